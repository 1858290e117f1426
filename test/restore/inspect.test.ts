/**
 * Inspection helpers of notebook 06: the matcher finds a shifted copy at its shift (random-init
 * encoder, real photo), similarity maps have X's cell layout, fusion gates read Eq. (4)'s α, and the
 * drawing helpers draw where asked.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../lib/backend';
import { loadPhotos, crop } from '../../lib/data/patches';
import { DynamicAggregation } from '../../lib/restore/aggregation';
import { inspectMatch, shiftAccuracy, fusionGates } from '../../lib/restore/inspect';
import { buildRestorer } from '../../lib/restore/train';
import { restorePreset } from '../../lib/restore/config';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';
import { drawBoxes, heatmap } from '../../lib/viz/draw';
import { makeImage } from '../../lib/data/image';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('inspectMatch: X = a 64-px crop, G = a 96-px crop 16 px up-left of it → X cells match at +2 cells (8 px per cell)', async () => {
  const [photo] = await loadPhotos('val', 160, 1);
  const g = crop(photo.image, 20, 30, 96, 96);
  const x = crop(photo.image, 36, 46, 64, 64);
  const p = new Params();
  const agg = new DynamicAggregation(p, 'm', { nf: 8, levels: 4, blockSize: 8 }, new Rng(3));
  const v = inspectMatch(agg, x, g);
  assert.deepEqual([v.cellPx, v.h, v.w, v.hr, v.wr], [8, 8, 8, 12, 12]);
  assert.equal(v.sim.length, 64);
  assert.ok(v.sim.every((s) => s > -1.0001 && s < 1.0001));
  const all = shiftAccuracy(v, 2, 2);
  const inner = shiftAccuracy(v, 2, 2, 1);
  console.log(`matched at the shift: ${all} of all cells, ${inner} of the inner 6×6`);
  assert.ok(inner >= 0.8, `share of inner cells matched at the shift: ${inner}`);
  assert.ok(all >= 0.5, `share of all cells matched at the shift: ${all}`);
  assert.ok(shiftAccuracy(v, 0, 0) < 0.2, 'not at the wrong shift');
  p.dispose();
});

test('fusionGates: one per level, 0 at initialisation (α = 0), reads a set α back', () => {
  const cfg = restorePreset('ci', { backbone: 'promptir', guidance: true, tasks: 'all-in-one' });
  const { params, net } = buildRestorer(cfg);
  const gates = fusionGates(net);
  assert.deepEqual(gates.map((g) => g.level), [0, 1, 2, 3]);
  assert.ok(gates.every((g) => g.value === 0));
  params.get(`${gates[2].name}.alpha`).assign(params.get(`${gates[2].name}.alpha`).add(-0.25));
  assert.equal(fusionGates(net)[2].value, 0.25);
  params.dispose();
  const nafCfg = restorePreset('ci', { backbone: 'nafnet', guidance: true, tasks: 'all-in-one' });
  const naf = buildRestorer(nafCfg);
  assert.equal(fusionGates(naf.net).length, 4);
  naf.params.dispose();
});

test('drawBoxes draws outlines only where asked; heatmap maps min→dark, max→bright, cell scale', () => {
  const img = makeImage(10, 10);
  const out = drawBoxes(img, [{ y: 2, x: 3, h: 4, w: 5, color: [1, 0, 0] }], 1);
  const px = (y: number, x: number) => Array.from(out.data.slice((y * 10 + x) * 3, (y * 10 + x) * 3 + 3));
  assert.deepEqual(px(2, 3), [1, 0, 0]);
  assert.deepEqual(px(5, 7), [1, 0, 0]);
  assert.deepEqual(px(3, 4), [0, 0, 0], 'inside untouched');
  assert.deepEqual(px(0, 0), [0, 0, 0]);
  assert.ok(img.data.every((v) => v === 0), 'input not modified');
  const h = heatmap([0, 1, 0.5, 0.25], 2, 2, { scale: 3 });
  assert.deepEqual([h.height, h.width], [6, 6]);
  const lum = (y: number, x: number) => h.data[(y * 6 + x) * 3] + h.data[(y * 6 + x) * 3 + 1] + h.data[(y * 6 + x) * 3 + 2];
  assert.ok(lum(0, 4) > lum(4, 4) && lum(4, 4) > lum(0, 0));
  assert.throws(() => heatmap([1, 2, 3], 2, 2), /3 values for a 2×2 map/);
});
