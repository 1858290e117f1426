/**
 * Evaluation harness on 2 tiny images with untrained ci restorers: table structure (models × tasks
 * + average), Y-channel metrics for derain, per-image deltas = guided − unguided, mean ± std of
 * those deltas, the stand-in warning, and the Markdown/HTML/JSON files.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend';
import { makeImage } from '../../lib/data/image';
import { restorePreset } from '../../lib/restore/config';
import { buildRestorer } from '../../lib/restore/train';
import { cleanOracleGuidance, GuidanceSource, guidanceKey } from '../../lib/restore/source';
import { table1, table9, singleTaskTable, writeTables, EvalImage, degradeForEval, restoreImage, TABLE1_TASKS } from '../../lib/restore/eval';
import { psnr } from '../../lib/metrics/metrics';
import { clip01 } from '../../lib/data/image';
import { dehazeDcp, NLM_METHOD } from '../../lib/restore/classical';
import { hashString } from '../../lib/util/rng';
import { meanStd } from '../../lib/metrics/stats';
import { tmpDir } from '../helpers/fixtures';
import { Rng } from '../../lib/util/rng';

function image(id: string, seed: number): EvalImage {
  const rng = new Rng(seed);
  const h = 32, w = 32;
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = 0.3 + 0.3 * Math.sin((x + 3 * c) / 5 + y / 7) + 0.1 * rng.random();
  return { id, clean: makeImage(h, w, d) };
}

const dir = tmpDir('tdr-restore-eval-');
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
const images = [image('a', 1), image('b', 2)];

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('degradeForEval: fixed seed per (image, task): same input twice, different images differ', () => {
  const spec = TABLE1_TASKS[2];
  assert.deepEqual(degradeForEval(images[0], spec).data, degradeForEval(images[0], spec).data);
  assert.notDeepEqual(degradeForEval(images[0], spec).data, degradeForEval(images[1], spec).data);
});

test('Table 1 on 2 images [32,32,3]: 3 models × (5 tasks + average), per-image deltas guided − unguided with mean ± std; files written', async () => {
  const unguided = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: false, tasks: 'all-in-one' })).net;
  const g = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: true, tasks: 'all-in-one' }));
  // open the fusion so that guidance changes the output (untrained α = 0 would give zero deltas)
  for (const [n, v] of g.params.entries()) if (/\.masa\.fuse\d\.block\.(beta|gamma)$/.test(n)) v.assign(v.add(0.5));
  const r = await table1({ unguided, guided: g.net, guidance: cleanOracleGuidance(), images });
  assert.deepEqual(r.tasks, ['haze', 'rain', 'noise15', 'noise25', 'noise50', 'average']);
  assert.deepEqual(r.models, ['input (degraded)', 'nafnet', 'nafnet + guidance', 'classical: DCP + GF / NLM']);
  assert.equal(r.baseline, 'nafnet');
  assert.equal(r.records.length, 3 * 5 * 2 + 4 * 2, 'the classical row has no rain records');
  assert.ok(r.records.filter((x) => x.task === 'rain').every((x) => x.channel === 'y'));
  assert.ok(r.records.filter((x) => x.task !== 'rain').every((x) => x.channel === 'rgb'));
  // deltas: per image and task, guided − unguided; 'average' = mean over tasks per image
  for (const d of r.deltas.filter((x) => x.model === 'nafnet + guidance' && x.task !== 'average')) {
    const a = r.records.find((x) => x.model === 'nafnet + guidance' && x.image === d.image && x.task === d.task)!;
    const b = r.records.find((x) => x.model === 'nafnet' && x.image === d.image && x.task === d.task)!;
    assert.equal(d.dPsnr, a.psnr - b.psnr);
  }
  assert.equal(r.deltas.filter((x) => x.model === 'input (degraded)').length, 2 * 6, 'the input row has deltas too');
  const dg = r.deltas.filter((x) => x.model === 'nafnet + guidance');
  assert.equal(dg.length, 2 * 6);
  const haze = dg.filter((x) => x.task === 'haze').map((x) => x.dPsnr);
  const st = r.deltaStats['nafnet + guidance'].haze.psnr;
  assert.equal(st.n, 2);
  assert.ok(Math.abs(st.mean - meanStd(haze).mean) < 1e-12 && Math.abs(st.std - meanStd(haze).std) < 1e-12);
  assert.ok(dg.some((x) => x.dPsnr !== 0), 'the guidance changes the result');
  const avgA = dg.filter((x) => x.image === 'a' && x.task !== 'average').map((x) => x.dPsnr);
  assert.ok(Math.abs(dg.find((x) => x.image === 'a' && x.task === 'average')!.dPsnr - avgA.reduce((p, q) => p + q) / 5) < 1e-9);
  assert.ok(Math.abs(r.means.nafnet.average.psnr - ['haze', 'rain', 'noise15', 'noise25', 'noise50'].reduce((s, t) => s + r.means.nafnet[t].psnr, 0) / 5) < 1e-9);
  assert.match(r.notes[0], /STAND-IN 'clean-oracle'/);
  assert.match(r.markdown, /\| method \| guidance \| haze \| rain \| noise15 \| noise25 \| noise50 \| average \|/);
  assert.match(r.markdown, /nafnet \+ guidance \| clean-oracle \|/);
  assert.match(r.markdown, /± /);
  // the classical reference row: DCP for haze, NLM for noise (same degraded inputs), '—' for rain and the average
  const cl = 'classical: DCP + GF / NLM';
  const xa = degradeForEval(images[0], TABLE1_TASKS[0]);
  assert.equal(r.records.find((x) => x.model === cl && x.image === 'a' && x.task === 'haze')!.psnr, psnr(images[0].clean, clip01(dehazeDcp(xa).image), { quantize: true }));
  const xn = degradeForEval(images[0], TABLE1_TASKS[3]);
  assert.equal(r.records.find((x) => x.model === cl && x.image === 'a' && x.task === 'noise25')!.psnr, psnr(images[0].clean, NLM_METHOD.restore(xn, TABLE1_TASKS[3]), { quantize: true }));
  assert.ok(Number.isNaN(r.means[cl].rain.psnr) && Number.isNaN(r.means[cl].average.psnr));
  assert.equal(r.deltaStats[cl].rain.psnr.n, 0);
  assert.equal(r.deltaStats[cl].average.psnr.n, 0, 'no average over a subset of the tasks');
  assert.equal(r.deltaStats[cl].haze.psnr.n, 2);
  assert.match(r.markdown, /\| classical: DCP \+ GF \/ NLM \| none \| [\d.]+\/[\d.]+ \| — \| [\d.]+\/[\d.]+ \| [\d.]+\/[\d.]+ \| [\d.]+\/[\d.]+ \| — \|/);
  assert.ok(r.notes.some((n) => /classical reference for haze .*He, Sun, Tang/.test(n)), r.notes.join('\n'));
  assert.ok(r.notes.some((n) => /classical reference for noise15, noise25, noise50 .*Buades, Coll, Morel/.test(n)));
  assert.ok(r.notes.some((n) => /^rain: no classical deraining reference/.test(n)));
  const files = writeTables(path.join(dir, 'out'), 'table1', r);
  for (const f of Object.values(files)) assert.ok(fs.statSync(f).size > 0, f);
  const j = JSON.parse(fs.readFileSync(files.json, 'utf8'));
  assert.equal(j.records.length, 38);
  assert.equal(j.markdown, undefined);
  assert.match(fs.readFileSync(files.html, 'utf8'), /<table/);
  g.params.dispose();
});

test("Table 1 controls: the guided model with the next photo's guidance and with a grey one (no extra generation)", async () => {
  const unguided = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: false, tasks: 'all-in-one' })).net;
  const g = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: true, tasks: 'all-in-one' }));
  for (const [n, v] of g.params.entries()) if (/\.masa\.fuse\d\.block\.(beta|gamma)$/.test(n)) v.assign(v.add(0.5));
  // a fake source whose image depends on the key only (so "whose guidance" is visible in the output)
  const asked: string[] = [];
  const guide = (key: string) => {
    const rng = new Rng(hashString(key));
    return makeImage(32, 32, Float32Array.from({ length: 32 * 32 * 3 }, () => rng.random()));
  };
  const src: GuidanceSource = { name: 'fake', standIn: 'test source', get: async (_x, key) => (asked.push(key), guide(key)) };
  const r = await table1({ unguided, guided: g.net, guidance: src, images, controls: true, classical: false });
  assert.deepEqual(r.models, ['input (degraded)', 'nafnet', 'nafnet + guidance', "nafnet + another photo's guidance", 'nafnet + grey guidance']);
  assert.equal(r.records.length, 5 * 5 * 2);
  assert.equal(asked.length, 2 * 5, 'each (photo, task) guidance is asked once');
  assert.equal(new Set(asked).size, 2 * 5);
  assert.equal(r.guidance["nafnet + another photo's guidance"], 'fake (other-photo control)');
  const spec = TABLE1_TASKS[0];
  const xa = degradeForEval(images[0], spec);
  const rec = (m: string) => r.records.find((x) => x.model === m && x.image === 'a' && x.task === spec.name)!.psnr;
  const q = (y: ReturnType<typeof restoreImage>) => psnr(images[0].clean, y, { quantize: true });
  assert.equal(rec('nafnet + guidance'), q(restoreImage(g.net, xa, guide(guidanceKey('val', 'a', spec.name)))));
  assert.equal(rec("nafnet + another photo's guidance"), q(restoreImage(g.net, xa, guide(guidanceKey('val', 'b', spec.name)))));
  assert.equal(rec('nafnet + grey guidance'), q(restoreImage(g.net, xa, makeImage(xa.height, xa.width, new Float32Array(xa.height * xa.width * 3).fill(0.5)))));
  assert.notEqual(rec('nafnet + guidance'), rec("nafnet + another photo's guidance"), 'the fusion is open: other guidance, other output');
  await assert.rejects(table1({ unguided, guided: g.net, guidance: src, images: images.slice(0, 1), controls: true }), /'other-photo' control needs at least 2 images/);
  g.params.dispose();
});

test('single-task rain table (Y channel) and Table 9 with an N-dependent source: structure', async () => {
  const unguided = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: false, tasks: 'rain' })).net;
  const guided = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: true, tasks: 'rain' })).net;
  const s = await singleTaskTable({ task: 'rain', unguided, guided, guidance: cleanOracleGuidance(), images });
  assert.deepEqual(s.tasks, ['rain', 'average']);
  assert.ok(s.records.every((x) => x.channel === 'y'));
  assert.deepEqual(s.models, ['input (degraded)', 'nafnet', 'nafnet + guidance'], 'no classical deraining row');
  assert.ok(s.notes.some((n) => /^rain: no classical deraining reference/.test(n)));
  const noise = await singleTaskTable({ task: 'noise', unguided, images: images.slice(0, 1) });
  assert.deepEqual(noise.tasks, ['noise15', 'noise25', 'noise50', 'average']);
  assert.deepEqual(noise.models, ['input (degraded)', 'nafnet', 'classical: NLM']);
  assert.ok(Number.isFinite(noise.means['classical: NLM'].average.psnr), 'NLM covers every column of the noise table');
  const noPlain = await singleTaskTable({ task: 'noise', unguided, images: images.slice(0, 1), classical: false });
  assert.deepEqual(noPlain.models, ['input (degraded)', 'nafnet']);
  const asked: number[] = [];
  const byN = (n: number): GuidanceSource => ({ name: `fake-N${n}`, standIn: 'test source', get: async (x) => (asked.push(n), x) });
  const t9 = await table9({ unguided, guidedFor: (n) => ({ net: guided, guidance: byN(n) }), specs: [TABLE1_TASKS[1]], images });
  assert.deepEqual(t9.models, ['baseline', 'N=5', 'N=10', 'N=20', 'N=30', 'N=40']);
  // sources of different N may share a name (the text source is 'text' for every N): each N must get its own guidance
  const g2 = buildRestorer(restorePreset('ci', { backbone: 'nafnet', guidance: true, tasks: 'rain' }));
  for (const [n, v] of g2.params.entries()) if (/\.masa\.fuse\d\.block\.(beta|gamma)$/.test(n)) v.assign(v.add(0.5));
  const sameName = (n: number): GuidanceSource => ({ name: 'text', standIn: 'test source', get: async (x) => makeImage(x.height, x.width, new Float32Array(x.data.length).fill(n / 40)) });
  const t9b = await table9({ unguided, guidedFor: (n) => ({ net: g2.net, guidance: sameName(n) }), specs: [TABLE1_TASKS[1]], images, ns: [10, 20] });
  const at = (m: string) => t9b.records.find((x) => x.model === m && x.image === 'a')!.psnr;
  assert.notEqual(at('N=10'), at('N=20'), 'N = 20 must not reuse the guidance of N = 10');
  g2.params.dispose();
  assert.deepEqual([...new Set(asked)], [5, 10, 20, 30, 40]);
  assert.equal(Object.keys(t9.deltaStats).length, 5);
});
