import test from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { gridPng, imageGridHtml, htmlTable, markdownTable, textTable, plotlyHtml, lineFigure, resetPlotlyBundle, htmlPage } from '../../lib/viz';
import { makeImage } from '../../lib/data/image';

const red = makeImage(10, 20, new Float32Array(10 * 20 * 3).map((_, i) => (i % 3 === 0 ? 1 : 0)));
const blue = makeImage(20, 20, new Float32Array(20 * 20 * 3).map((_, i) => (i % 3 === 2 ? 1 : 0)));

test('gridPng: 2 columns × 2 rows at common height 20, gap 4 → 4+40+4+20+4 wide, 4+20+4+20+4 tall', async () => {
  const png = await gridPng([red, blue, blue], { columns: 2, gap: 4 });
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 72);
  assert.equal(meta.height, 52);
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => Array.from(data.subarray((y * 72 + x) * 3, (y * 72 + x) * 3 + 3));
  assert.deepEqual(px(10, 10), [255, 0, 0]); // first cell is red
  assert.deepEqual(px(60, 10), [0, 0, 255]); // second cell is blue
  assert.deepEqual(px(1, 1), [255, 255, 255]); // gap is white
});

test('gridPng throws on no images', async () => {
  await assert.rejects(gridPng([]), /no images/);
});

test('imageGridHtml: one <img> per item with escaped labels', async () => {
  const html = await imageGridHtml([{ image: red, label: 'a<b' }, { image: blue, label: 'σ=25' }], { columns: 1 });
  assert.equal((html.match(/<img /g) ?? []).length, 2);
  assert.ok(html.includes('a&lt;b'));
  assert.ok(html.includes('data:image/png;base64,'));
});

test('imageGridHtml: labels wrap inside a cell as wide as the shown image, long ones are cut with the whole label as tooltip; images keep their aspect', async () => {
  const wide = makeImage(32, 64, new Float32Array(32 * 64 * 3).fill(0.5)); // 2:1
  const long = `Y: ${'a photo of a mountain lake under a cloudy sky '.repeat(4)}<end>`;
  const html = await imageGridHtml([{ image: wide, label: 'X: haze · darkChannel 0.596' }, { image: blue, label: long }], { height: 64 });
  const figures = html.match(/<figure [^>]*>/g) ?? [];
  assert.deepEqual(figures.map((f) => /width:(\d+)px/.exec(f)?.[1]), ['128', '96'], 'cell width = shown image width (2:1 at 64 px), at least 96 px');
  const captions = [...html.matchAll(/<figcaption style="([^"]*)"( title="([^"]*)")?>([^<]*)<\/figcaption>/g)];
  assert.equal(captions.length, 2);
  for (const c of captions) assert.match(c[1], /white-space:normal/, 'the row is nowrap; captions must wrap');
  assert.equal(captions[0][4], 'X: haze · darkChannel 0.596');
  assert.equal(captions[0][2], undefined, 'a short label has no tooltip');
  assert.ok(captions[1][4].endsWith('…') && captions[1][4].length < long.length / 2, captions[1][4]);
  assert.ok(captions[1][4].startsWith('Y: a photo of a mountain lake'));
  assert.equal(captions[1][3], long.replace(/</g, '&lt;').replace(/>/g, '&gt;'), 'the whole label is the tooltip');
  for (const img of html.match(/<img [^>]*>/g) ?? []) assert.match(img, /height:64px;width:auto/);
});

test('htmlTable / markdownTable format numbers, ∞ and missing values', () => {
  const rows = [{ task: 'noise', psnr: 28.1234, ssim: 0.81 }, { task: 'clean', psnr: Infinity, ssim: null }];
  const h = htmlTable(rows, { digits: { psnr: 2, ssim: 4 }, caption: 'x<y' });
  assert.ok(h.includes('<th style="text-align:center;padding:2px 8px">psnr</th>'));
  assert.ok(h.includes('>28.12<'));
  assert.ok(h.includes('>0.8100<'));
  assert.ok(h.includes('>∞<'));
  assert.ok(h.includes('>—<'));
  assert.ok(h.includes('x&lt;y'));
  const m = markdownTable(rows, { digits: 1 });
  assert.equal(m.split('\n')[0], '| task | psnr | ssim |');
  assert.equal(m.split('\n')[2], '| noise | 28.1 | 0.8 |');
});

test('plotlyHtml inlines the local bundle once, then only the figure; no CDN address', () => {
  resetPlotlyBundle();
  const fig = lineFigure([{ name: 'psnr', x: [1, 2], y: [30, 28] }], { title: 'PSNR vs σ' });
  const first = plotlyHtml(fig);
  const second = plotlyHtml(fig);
  assert.ok(first.length > 1_000_000, 'first figure carries the plotly bundle');
  assert.ok(second.length < 5000, 'second figure does not');
  assert.ok(second.includes('"PSNR vs σ"'));
  assert.ok(!/cdn\.plot\.ly|https?:\/\/cdn/.test(second));
  assert.ok(htmlPage('t', [second]).includes('Plotly'));
});

test('liveLossChart redraws one display with every l_* series', async () => {
  const { liveLossChart } = await import('../../lib/viz/live');
  const shown: string[] = [];
  const live = liveLossChart({ html: (s) => shown.push(s) }, { minIntervalMs: 0 });
  live.onLog({ step: 0, lr: 1, gradNorm: 1, msPerStep: 5, l_total: 1, l_eps: 0.5 });
  live.onLog({ step: 1, lr: 1, gradNorm: 1, msPerStep: 5, l_total: 0.8, l_eps: 0.4 });
  live.finish();
  assert.equal(shown.length, 3);
  assert.ok(shown[2].includes('"name":"l_total"') && shown[2].includes('"name":"l_eps"'));
  assert.ok(shown[2].includes('step 2'));
});

test('textTable pads each column to its widest cell, rules the header and refuses ragged rows', () => {
  const t = textTable(['backend', 'ms', ''], [['wasm', '2027', ''], ['tensorflow', '956', '← chosen']]);
  assert.equal(t, ['backend     ms', '----------  ----  --------', 'wasm        2027', 'tensorflow  956   ← chosen'].join('\n'));
  assert.throws(() => textTable(['a', 'b'], [['1']]), /row 0 has 1 cells, the header has 2/);
});
