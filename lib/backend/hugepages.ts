/**
 * Transparent huge pages for the tensors of the tensorflow backend. TensorFlow's CPU allocator takes
 * its buffers from glibc malloc, and a fresh process first-touches every 4-KiB page of its working set.
 * glibc ≥ 2.35 has a tunable, `glibc.malloc.hugetlb=1`, with which malloc asks for transparent huge
 * pages (madvise MADV_HUGEPAGE) on the memory it maps: `tdr bench --restore` at 512² counted 184 196 →
 * 36 090 page faults for the unguided restorer, 5.0–5.6 → 2.9–3.4 s (docs/experiments.md §6).
 *
 * glibc reads tunables once, when the process starts, so the setting goes into the environment of
 * the processes tdr starts: the `tdr` command itself (its `#!` line), `npm start` and `npm run bench`
 * (package.json), the Jupyter kernel (kernel.json) and the fresh processes of `tdr bench --restore`. It is put first in GLIBC_TUNABLES, so a user's own
 * `GLIBC_TUNABLES=glibc.malloc.hugetlb=0` (later in the list) still turns it off. Elsewhere (musl,
 * macOS, glibc < 2.35, THP 'never') the variable is ignored.
 */
import * as fs from 'node:fs';

export const HUGE_PAGE_TUNABLE = 'glibc.malloc.hugetlb=1';

/** `env` with HUGE_PAGE_TUNABLE first in GLIBC_TUNABLES (as the `tdr` command's `#!` line sets it). */
export function withHugePages(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const cur = env.GLIBC_TUNABLES ?? '';
  if (cur.split(':').includes(HUGE_PAGE_TUNABLE)) return env;
  return { ...env, GLIBC_TUNABLES: cur ? `${HUGE_PAGE_TUNABLE}:${cur}` : HUGE_PAGE_TUNABLE };
}

let glibc: string | null | undefined;

/** The running glibc's version ('2.36'), or null (not glibc). */
export function glibcVersion(): string | null {
  if (glibc === undefined) {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    glibc = header?.glibcVersionRuntime ?? null;
  }
  return glibc;
}

/**
 * Does malloc of this process use transparent huge pages? Linux with glibc ≥ 2.35, THP not 'never',
 * and the last `glibc.malloc.hugetlb` in GLIBC_TUNABLES is 1 or 2 (as it was at process start).
 */
export function hugePagesActive(env: NodeJS.ProcessEnv = process.env): boolean {
  // the environment first: without the tunable nothing else need be read
  const settings = (env.GLIBC_TUNABLES ?? '').split(':').filter((t) => t.startsWith('glibc.malloc.hugetlb='));
  const last = settings[settings.length - 1]?.split('=')[1];
  if (last !== '1' && last !== '2') return false;
  if (process.platform !== 'linux') return false;
  const v = glibcVersion();
  if (!v) return false;
  const [major, minor] = v.split('.').map(Number);
  if (major < 2 || (major === 2 && minor < 35)) return false;
  let thp = '';
  try {
    thp = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  } catch {
    return false;
  }
  return !/\[never\]/.test(thp);
}
