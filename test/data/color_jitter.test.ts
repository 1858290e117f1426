import test from 'node:test';
import assert from 'node:assert/strict';
import { colorJitter, hueRotation } from '../../lib/data/color_jitter';
import { makeImage } from '../../lib/data/image';

const apply = (m: Float64Array, rgb: number[]) => [0, 1, 2].map((r) => m[3 * r] * rgb[0] + m[3 * r + 1] * rgb[1] + m[3 * r + 2] * rgb[2]);

test('hueRotation: greys stay grey, 120° turns red into green and green into blue, and 360° is the identity', () => {
  for (const deg of [17, 90, 200]) apply(hueRotation(deg), [0.4, 0.4, 0.4]).forEach((v) => assert.ok(Math.abs(v - 0.4) < 1e-12));
  const m = hueRotation(120);
  apply(m, [1, 0, 0]).forEach((v, i) => assert.ok(Math.abs(v - [0, 1, 0][i]) < 1e-12, `red → ${apply(m, [1, 0, 0])}`));
  apply(m, [0, 1, 0]).forEach((v, i) => assert.ok(Math.abs(v - [0, 0, 1][i]) < 1e-12));
  apply(hueRotation(360), [0.2, 0.5, 0.9]).forEach((v, i) => assert.ok(Math.abs(v - [0.2, 0.5, 0.9][i]) < 1e-12));
});

test('colorJitter: deterministic per seed, in [0, 1], one transform for every pixel, and seeds give different colours', () => {
  const img = makeImage(4, 4);
  for (let i = 0; i < img.data.length; i += 3) img.data.set(i < 24 ? [0.8, 0.3, 0.1] : [0.1, 0.5, 0.7], i);
  const a = colorJitter(img, 7);
  assert.deepEqual(Array.from(a.data), Array.from(colorJitter(img, 7).data));
  assert.ok(a.data.every((v) => v >= 0 && v <= 1));
  // pixels that were equal stay equal (a global colour transform, no spatial change)
  assert.deepEqual(Array.from(a.data.subarray(0, 3)), Array.from(a.data.subarray(21, 24)));
  assert.deepEqual(Array.from(a.data.subarray(24, 27)), Array.from(a.data.subarray(45, 48)));
  const colours = new Set([1, 2, 3, 4, 5, 6].map((s) => Array.from(colorJitter(img, s).data.subarray(0, 3), (v) => v.toFixed(3)).join()));
  assert.ok(colours.size >= 5, `6 seeds gave ${colours.size} distinct colours`);
  // no jitter at all: every range 0 is the identity
  const same = colorJitter(img, 3, { hue: 0, saturation: 0, gain: 0, gamma: 0 });
  same.data.forEach((v, i) => assert.ok(Math.abs(v - img.data[i]) < 1e-6));
});
