/**
 * Memory of whole-image work that does not go through a network: the metrics stream over rows, so
 * measuring a photo needs little beyond its two float32 images (they used to take ~290 bytes per
 * pixel: 3.5 GB at 12 Mpixel). Measured as a child process's peak RSS above its RSS once the two
 * images exist — a size, not a time.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { projectRoot } from '../../lib/util/fsx';

test('computeMetrics (PSNR, SSIM, Y, 3-D SSIM) on a 1600×1500 pair: peak RSS grows by < 40 bytes per pixel over the two images', () => {
  const metrics = path.join(projectRoot(), 'dist', 'lib', 'metrics', 'metrics.js');
  const script = `
    const { computeMetrics } = require(${JSON.stringify(metrics)});
    const h = 1600, w = 1500, n = h * w * 3;
    const a = new Float32Array(n), b = new Float32Array(n);
    for (let i = 0; i < n; i++) { a[i] = ((i * 2654435761) % 1000) / 1000; b[i] = Math.min(1, a[i] + ((i % 7) - 3) / 255); }
    const before = process.memoryUsage().rss;
    const m = computeMetrics({ height: h, width: w, data: a }, { height: h, width: w, data: b });
    const peak = process.resourceUsage().maxRSS * 1024;
    process.stdout.write(JSON.stringify({ grow: peak - before, pixels: h * w, m }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { grow, pixels, m } = JSON.parse(r.stdout) as { grow: number; pixels: number; m: Record<string, number> };
  for (const k of ['psnr', 'ssim', 'psnrY', 'ssimY', 'ssim3d']) assert.ok(Number.isFinite(m[k]), `${k}: ${m[k]}`);
  assert.ok(grow / pixels < 40, `peak RSS grew by ${(grow / pixels).toFixed(1)} bytes per pixel (${(grow / 2 ** 20).toFixed(0)} MiB)`);
});
