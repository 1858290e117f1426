/**
 * The backend a test run checks: the one `initBackend` picks (env TDR_BACKEND, else the default order
 * of lib/backend/index.ts: tensorflow where tfjs-node loads, else wasm). The pure-JS cpu backend is
 * the oracle it is compared with.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend';

export async function backendUnderTest(): Promise<string> {
  return (await initBackend({ quiet: true })).name;
}

/**
 * The name `initBackend` picks in a fresh process with this environment, known synchronously (for
 * test and describe options): a child node process runs the resolver and prints it.
 * @throws Error with the child's stderr when the resolver fails
 */
export function resolvedBackendSync(env: NodeJS.ProcessEnv = process.env): string {
  const lib = path.join(__dirname, '..', '..', 'lib', 'backend', 'index.js');
  const code = `require(${JSON.stringify(lib)}).initBackend({ quiet: true }).then((i) => console.log(i.name), (e) => { console.error(e.message); process.exit(3); })`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  if (r.status !== 0) throw new Error(`the backend resolver failed in a child process: ${r.stderr.trim()}`);
  return r.stdout.trim().split('\n').pop() as string;
}
