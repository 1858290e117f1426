import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { HUGE_PAGE_TUNABLE, hugePagesActive, withHugePages } from '../../lib/backend/hugepages';
import { projectRoot } from '../../lib/util/fsx';

test('withHugePages puts glibc.malloc.hugetlb=1 first in GLIBC_TUNABLES, keeping what the user set after it', () => {
  assert.equal(withHugePages({}).GLIBC_TUNABLES, HUGE_PAGE_TUNABLE);
  assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0');
  const env = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1:glibc.malloc.arena_max=2' };
  assert.equal(withHugePages(env), env, 'already there: unchanged');
});

test('hugePagesActive follows the last glibc.malloc.hugetlb of GLIBC_TUNABLES (where glibc and THP allow it)', () => {
  assert.equal(hugePagesActive({}), false);
  assert.equal(hugePagesActive({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0' }), false);
  let thp = 'never';
  try {
    thp = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  } catch {
    /* not Linux */
  }
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const able = !/\[never\]/.test(thp) && !!glibc && Number(glibc.split('.')[1]) >= 35;
  assert.equal(hugePagesActive({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0:glibc.malloc.hugetlb=1' }), able);
});

test("the tdr command's #! line starts node with huge pages, and a user's glibc.malloc.hugetlb=0 turns them off", (t) => {
  const main = path.join(projectRoot(), 'dist', 'lib', 'cli', 'main.js');
  const line = fs.readFileSync(main, 'utf8').split('\n')[0];
  const m = /^#!(\S+) (.+)$/.exec(line);
  assert.ok(m, `${main}: no #! line`);
  if (!fs.existsSync(m[1])) return t.skip(`${m[1]} is not on this machine`);
  // as the kernel runs a #! script: the interpreter, the rest of the line as ONE argument, then the script's
  // arguments (here node's -e instead of the script)
  const probe = "const h = require(process.argv[1]); process.stdout.write(JSON.stringify([process.env.GLIBC_TUNABLES, h.hugePagesActive()]))";
  const hp = path.join(projectRoot(), 'dist', 'lib', 'backend', 'hugepages.js');
  const run = (env: NodeJS.ProcessEnv): [string, boolean] => {
    const r = spawnSync(m[1], [m[2], '-e', probe, hp], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as [string, boolean];
  };
  const [tunables, active] = run({});
  assert.equal(tunables.split(':')[0], HUGE_PAGE_TUNABLE);
  assert.equal(active, hugePagesActive({ GLIBC_TUNABLES: HUGE_PAGE_TUNABLE }));
  const [tunables0, active0] = run({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' });
  assert.equal(tunables0, 'glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0');
  assert.equal(active0, false);
});
