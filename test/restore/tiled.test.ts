/**
 * Tiled restoration (lib/restore/tiled.ts): an image larger than one pass fits is restored in
 * overlapping tiles that agree with the untiled pass (≤ 0.05 dB) and leave no seams; the tile plan
 * comes from a memory budget whose prediction is checked against tf.profile, and sizes the backend
 * cannot hold are refused up front with the size and the limit (they used to end in a backend abort).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { RGBImage, makeImage } from '../../lib/data/image';
import { degrade } from '../../lib/data/degrade';
import { resizeImage } from '../../lib/data/io';
import { psnr } from '../../lib/metrics/metrics';
import { loadRestorer, buildRestorer } from '../../lib/restore/train';
import { restorePreset } from '../../lib/restore/config';
import { GuidedRestorer } from '../../lib/restore/guided';
import {
  GUIDANCE_MAX_PIXELS,
  backendLimitBytes,
  checkWholeImageFits,
  matcherBytes,
  cores,
  fitGuidance,
  forwardBytes,
  planTiles,
  restoreTiled,
  tileWindow,
} from '../../lib/restore/tiled';
import { restoreImage } from '../../lib/restore/eval';
import { inspectMatch } from '../../lib/restore/inspect';
import { shippedCheckpoint } from '../../lib/util/paths';
import { UserError } from '../../lib/util/errors';
import { Rng } from '../../lib/util/rng';

/** A stationary texture (a sum of random plane waves per channel): its gradient energy is the same along every line. */
function texture(h: number, w: number, seed: number): RGBImage {
  const rng = new Rng(seed);
  const waves = Array.from({ length: 12 }, () => [rng.random() * 0.3, rng.random() * 0.3, rng.random() * 6.28, rng.random() * 6.28, rng.random() * 6.28]);
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (const [fx, fy, p0, p1, p2] of waves) s += Math.sin(fx * x + fy * y + [p0, p1, p2][c]);
        d[(y * w + x) * 3 + c] = Math.min(1, Math.max(0, 0.5 + (0.4 * s * 2.5) / 12));
      }
  return makeImage(h, w, d);
}

const clean = texture(256, 256, 3);
const noisy = degrade(clean, { task: 'noise', seed: 0, sigma: 25, mode: 'uint8' }).image;
const nets: Record<string, { net: GuidedRestorer; dispose: () => void }> = {};
/** G as the text side makes it: 128² (the T2I's image size); here the clean image reduced to that */
let g128: RGBImage;

test.before(async () => {
  await initBackend({ quiet: true });
  g128 = await resizeImage(clean, 128, 128, 'lanczos3');
  for (const guided of [false, true]) {
    const { net, params } = loadRestorer(shippedCheckpoint(`restore-promptir-all-in-one-${guided ? 'guided' : 'plain'}-demo`), { guidance: guided });
    nets[`promptir-demo-${guided ? 'guided' : 'plain'}`] = { net, dispose: () => params.dispose() };
  }
  for (const backbone of ['nafnet', 'restormer'] as const) {
    const { net, params } = buildRestorer(restorePreset('ci', { backbone, guidance: true, tasks: 'all-in-one' }));
    nets[`${backbone}-ci-guided`] = { net, dispose: () => params.dispose() };
  }
});
test.after(() => Object.values(nets).forEach((n) => n.dispose()));

test('tiled and untiled outputs agree within 0.05 dB PSNR on 256² (shipped PromptIR guided and plain, ci NAFNet and Restormer guided, G of 128²; forced tiles of 192, 128 and 96 where a tile spans three matcher blocks)', () => {
  for (const [name, { net }] of Object.entries(nets)) {
    const g = net.cfg.guidance ? g128 : undefined;
    const whole = restoreImage(net, noisy, g);
    assert.equal(planTiles(net, 256, 256, { guidance: g ? [128, 128] : undefined }).count, 1, `${name}: 256² fits the default budget in one pass`);
    const ref = psnr(whole, clean);
    // a tile spans at least three of the network's size multiples (the guided demo's matcher blocks are
    // 64 px: a 128 tile is all border, 0.052 dB there on this texture)
    const tiles = [192, 128, 96].filter((t) => t >= 3 * net.sizeMultiple);
    assert.ok(tiles.length > 0);
    for (const tile of tiles) {
      const plan = planTiles(net, 256, 256, { tile, guidance: g ? [128, 128] : undefined });
      assert.ok(plan.count > 1 && plan.overlap > 0, `${name}: tile ${tile} tiles the image with overlap (${plan.count} tiles, overlap ${plan.overlap})`);
      const tiled = restoreImage(net, noisy, g, { tile });
      assert.deepEqual([tiled.height, tiled.width], [256, 256]);
      const dB = psnr(tiled, clean) - ref;
      assert.ok(Math.abs(dB) <= 0.05, `${name}, tile ${tile} (${plan.count} tiles): PSNR ${psnr(tiled, clean).toFixed(3)} vs untiled ${ref.toFixed(3)} dB`);
    }
  }
});

/** Mean squared difference of neighbouring pixels across the given lines (rows and columns), over that elsewhere. */
function borderEnergyRatio(img: RGBImage, lines: Set<number>): number {
  const { height: h, width: w, data } = img;
  let bs = 0, bn = 0, os = 0, on = 0;
  const add = (i: number, j: number, border: boolean) => {
    let e = 0;
    for (let c = 0; c < 3; c++) e += (data[i * 3 + c] - data[j * 3 + c]) ** 2;
    if (border) (bs += e), bn++;
    else (os += e), on++;
  };
  for (let y = 0; y < h; y++) for (let x = 1; x < w; x++) add(y * w + x, y * w + x - 1, lines.has(x));
  for (let y = 1; y < h; y++) for (let x = 0; x < w; x++) add(y * w + x, (y - 1) * w + x, lines.has(y));
  return bs / bn / (os / on);
}

test('no seams: gradient energy along the tile borders is within 10 % of elsewhere (a naive tiler is not)', () => {
  for (const name of ['promptir-demo-plain', 'promptir-demo-guided']) {
    const { net } = nets[name];
    const g = net.cfg.guidance ? g128 : undefined;
    const plan = planTiles(net, 256, 256, { tile: 128, guidance: g ? [128, 128] : undefined });
    // where a tile starts or ends, and where the blending weights cross (the cores' bounds)
    const lines = new Set<number>();
    for (const p of plan.xs) {
      if (p > 0) lines.add(p);
      if (p + plan.tileWidth < 256) lines.add(p + plan.tileWidth);
    }
    cores(plan.xs, plan.tileWidth, plan.paddedWidth, plan.multiple).forEach(([a], i) => i > 0 && lines.add(plan.xs[i] + a));
    assert.deepEqual(plan.xs, plan.ys);
    const tiled = borderEnergyRatio(restoreImage(net, noisy, g, { tile: 128 }), lines);
    const untiled = borderEnergyRatio(restoreImage(net, noisy, g), lines);
    if (g) {
      // the guided network's matcher works in blocks of `sizeMultiple` pixels, and tile borders lie on
      // that grid: the untiled output itself has more gradient energy there, and tiling adds none
      assert.ok(Math.abs(tiled / untiled - 1) <= 0.1, `${name}: border/elsewhere ${tiled.toFixed(3)} tiled vs ${untiled.toFixed(3)} untiled`);
    } else {
      assert.ok(Math.abs(tiled - 1) <= 0.1, `${name}: border/elsewhere gradient energy ${tiled.toFixed(3)} (lines ${[...lines]})`);
    }
    // the control: tiles without overlap, each with its own statistics, make visible seams
    const naive = borderEnergyRatio(restoreImage(net, noisy, g, { tile: 128, overlap: 0, wholeImageStatistics: false }), new Set([128]));
    assert.ok(naive > 1.5 * untiled, `${name}: a naive tiler's seam ratio ${naive.toFixed(2)} (the measure sees seams)`);
  }
});

test('tile windows sum to 1 with their neighbours across the overlap; cores partition the axis on the size multiple', () => {
  const xs = [0, 96, 128];
  const T = 128, L = 256, o = 32;
  const sum = new Float32Array(L);
  for (const p of xs) tileWindow(p, T, L, o).forEach((v, k) => (sum[p + k] += v));
  for (let i = 0; i < L; i++) assert.ok(sum[i] > 0.99, `weight sum at ${i}: ${sum[i]}`);
  const c = cores(xs, T, L, 32);
  let at = 0;
  c.forEach(([a, b], i) => {
    assert.equal(xs[i] + a, at, 'contiguous');
    assert.equal((xs[i] + a) % 32, 0);
    at = xs[i] + b;
  });
  assert.equal(at, L);
});

test('a 640×160 guided input and a 1200×1000 guidance image restore (G reduced to the pixel cap), output of the input size', () => {
  const { net } = nets['promptir-demo-guided'];
  const x = degrade(texture(160, 640, 5), { task: 'noise', seed: 1, sigma: 25, mode: 'uint8' }).image;
  const big = texture(1000, 1200, 6);
  const small = fitGuidance(big);
  assert.ok(small.height * small.width <= GUIDANCE_MAX_PIXELS && Math.abs(small.width / small.height - 1.2) < 0.01, `G reduced to ${small.width}x${small.height}`);
  const y = restoreImage(net, x, big, { budgetMiB: 256 });
  assert.deepEqual([y.height, y.width], [160, 640]);
  assert.ok(y.data.every((v) => v >= 0 && v <= 1));
});

test('sizes the backend cannot hold are refused up front with the size and the limit (UserError), before any pass', () => {
  const { net } = nets['promptir-demo-guided'];
  const limitMiB = Math.floor(backendLimitBytes() / 2 ** 20);
  assert.throws(
    () => planTiles(net, 4000, 3000, { budgetMiB: limitMiB + 1 }),
    (e: Error) => e instanceof UserError && new RegExp(`tile budget ${limitMiB + 1} MiB is above what the \\w+ backend can hold \\(${Math.round(backendLimitBytes() / 2 ** 20)} MiB\\)`).test(e.message),
  );
  assert.throws(() => planTiles(net, 9000, 9000, { tile: 8192, guidance: [128, 128] }), (e: Error) => e instanceof UserError && /a 8192x8192 tile needs about \d+ MiB \(predicted\), more than the \w+ backend can hold \(\d+ MiB\)/.test(e.message));
  assert.throws(() => planTiles(net, 512, 512, { budgetMiB: 1 }), (e: Error) => e instanceof UserError && /even the smallest tile \(64x64\) needs about \d+ MiB .* more than the tile budget 1 MiB/.test(e.message));
  // a 12-Mpixel photo gets a plan within the default budget (the size that used to abort)
  const plan = planTiles(net, 3000, 4000, { guidance: [128, 128] });
  assert.ok(plan.count > 1 && plan.predictedBytes <= plan.budgetBytes, `${plan.count} tiles of ${plan.tileHeight}x${plan.tileWidth}`);
});

test('forwardBytes: the predicted peak of one pass covers the peak tf.profile measures, and is not more than 2.5× it', async () => {
  for (const [name, sides] of [['nafnet-ci-guided', [64, 128]], ['promptir-demo-guided', [64, 128]], ['promptir-demo-plain', [128]]] as const) {
    const { net } = nets[name];
    for (const side of sides) {
      const x = tf.randomUniform([1, side, side, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const g = net.cfg.guidance ? (tf.randomUniform([1, 128, 128, 3], 0, 1, 'float32', 2) as tf.Tensor4D) : undefined;
      const before = tf.memory().numBytes;
      const info = await tf.profile(() => tf.tidy(() => net.call(x, g)));
      if (info.result instanceof tf.Tensor) info.result.dispose();
      // peakBytes counts every tensor alive (all the nets of this file): keep this pass's own, plus its weights and inputs
      const measured = info.peakBytes - before + 4 * net.params.count() + 4 * (x.size + (g?.size ?? 0));
      tf.dispose([x, ...(g ? [g] : [])]);
      const predicted = forwardBytes(net, side, side, g ? { size: [128, 128] } : undefined);
      assert.ok(predicted >= measured, `${name} ${side}²: predicted ${predicted} < measured ${measured}`);
      assert.ok(predicted <= 2.5 * measured, `${name} ${side}²: predicted ${predicted} > 2.5 × measured ${measured}`);
    }
  }
});

test('whole-image matcher inspection (notebook 06) refuses a size the backend cannot hold up front, with the size and the limit', () => {
  const { net } = nets['promptir-demo-guided'];
  const agg = net.aggregation!;
  // the smallest square whose matcher pass is predicted beyond the backend's limit
  let side = 256;
  while (matcherBytes(agg, side, side, 128, 128) <= backendLimitBytes()) side += 64;
  const x = makeImage(side, side, new Float32Array(side * side * 3).fill(0.5));
  assert.throws(() => inspectMatch(net, x, g128), (e: Error) => e instanceof UserError && new RegExp(`^inspectMatch: a ${side}x${side} image needs about \\d+ MiB \\(predicted\\) in one pass, more than the \\w+ backend can hold \\(\\d+ MiB\\)`).test(e.message));
  assert.doesNotThrow(() => checkWholeImageFits('x', 10, 10, backendLimitBytes()));
});
