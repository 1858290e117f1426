/**
 * The PyTorch CPU peer of the reference U-Net step (lib/jobs/bench_unet.ts): the same network, batch and
 * optimiser in PyTorch (Debian's python3-torch), at the same thread count, run side by side with
 * `tdr bench --peer`. Absolute times on shared 2-core machines are noisy; the ratio of one run is
 * what counts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../util/fsx';
import { UserError } from '../util/errors';

export interface PeerResult {
  framework: string;
  threads: number;
  unetStepMs: number;
  stepsMs: number[];
}

export function peerScript(): string {
  return path.join(projectRoot(), 'lib', 'jobs', 'peer', 'unet_step.py');
}

/** Run the PyTorch peer; throws a user-facing error naming what is missing. */
export function runPeerBench(opts: { threads: number; steps: number; warmup: number; python?: string }): PeerResult {
  const python = opts.python ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const r = spawnSync(python, [peerScript(), '--threads', String(opts.threads), '--steps', String(opts.steps), '--warmup', String(opts.warmup)], { encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) {
    const missing = /No module named 'torch'/.test(r.stderr);
    throw new UserError(missing ? `${python}: PyTorch is not installed (Debian/Ubuntu: apt-get install python3-torch)` : `PyTorch peer failed: ${r.stderr.trim().split('\n').pop()}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerResult;
}
