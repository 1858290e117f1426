/**
 * GuidedRestorer with each backbone: output shapes (guided and not), α = 0 ⇒ same output as the
 * unguided net, odd sizes, the official fusion-level index defect, gradients on the backend under test, leaks, the
 * matcher freeze through the shared train loop, config errors.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { GuidedRestorer, BackboneConfig } from '../../lib/restore/guided';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';
import { Stage, train } from '../../lib/train/loop';
import { tmpDir } from '../helpers/fixtures';
import { backendUnderTest } from '../helpers/backend';

const TINY: Record<BackboneConfig['type'], BackboneConfig> = {
  nafnet: { type: 'nafnet', width: 8, encBlocks: [1, 1, 1], middleBlocks: 1, decBlocks: [1, 1, 1], dwExpand: 2, ffnExpand: 2 },
  restormer: { type: 'restormer', dim: 8, blocks: [1, 1, 1, 1], refinement: 1, heads: [1, 1, 2, 2], ffnExpansion: 2, bias: false, layerNorm: 'withBias' },
  promptir: {
    type: 'promptir', dim: 8, blocks: [1, 1, 1, 1], refinement: 0, heads: [1, 1, 2, 2], ffnExpansion: 2, bias: false, layerNorm: 'withBias',
    promptLen: 3, promptDims: [8, 8, 16], promptSizes: [8, 4, 2],
  },
};
const AGG = { nf: 4, blockSize: 2 };
const TYPES = ['nafnet', 'restormer', 'promptir'] as const;

function images(seed: number, shape: [number, number, number, number]): tf.Tensor4D {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor4d(Float32Array.from({ length: n }, () => rng.random()), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Make the guidance path active: α = 0.5 (Restormer/PromptIR) or β = γ = 0.5 in the fusion blocks (NAFNet). */
function openFusion(p: Params, prefix: string): void {
  for (const [name, v] of p.entries()) {
    if (name.startsWith(`${prefix}.masa.fuse`) && /\.(alpha|block\.beta|block\.gamma)$/.test(name)) tf.tidy(() => v.assign(tf.fill(v.shape, 0.5)));
  }
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

for (const type of TYPES) {
  test(`${type}: x=[2,32,32,3] g=[2,48,40,3] → [2,32,32,3]; unguided x=[2,32,32,3] → [2,32,32,3]; no leak`, () => {
    for (const guidance of [true, false]) {
      const p = new Params();
      const net = new GuidedRestorer(p, 'r', { backbone: TINY[type], guidance, aggregation: AGG }, new Rng(0));
      const x = images(1, [2, 32, 32, 3]);
      const g = images(2, [2, 48, 40, 3]);
      const before = tf.memory().numTensors;
      const y = net.call(x, guidance ? g : undefined);
      assert.deepEqual(y.shape, [2, 32, 32, 3]);
      y.dispose();
      assert.equal(tf.memory().numTensors, before, `guidance=${guidance}: forward leaks no tensors`);
      assert.equal(p.count(['r.masa']) > 0, guidance, 'guidance parameters exist iff guidance');
      tf.dispose([x, g]);
      p.dispose();
    }
  });

  test(`${type}: α = 0 at init ⇒ guided output = unguided output (same shared weights), x=[1,32,32,3] g=[1,40,24,3]`, () => {
    const pg = new Params();
    const pu = new Params();
    const guided = new GuidedRestorer(pg, 'r', { backbone: TINY[type], guidance: true, aggregation: AGG }, new Rng(7));
    const plain = new GuidedRestorer(pu, 'r', { backbone: TINY[type], guidance: false }, new Rng(7));
    // the shared part has the same names and (separate seed forks) the same values
    const shared = pg.snapshot();
    for (const n of pu.names()) assert.deepEqual(shared.get(n)?.data, pu.get(n).dataSync(), `shared weight ${n}`);
    const x = images(3, [1, 32, 32, 3]);
    const g = images(4, [1, 40, 24, 3]);
    const yg = guided.call(x, g);
    const yu = plain.call(x);
    assert.ok(maxAbsDiff(yg, yu) < 1e-5, `α=0: max |guided − unguided| = ${maxAbsDiff(yg, yu)}`);
    openFusion(pg, 'r');
    const yo = guided.call(x, g);
    assert.ok(maxAbsDiff(yo, yu) > 1e-4, 'with α ≠ 0 the guidance changes the output (the test can fail)');
    tf.dispose([x, g, yg, yu, yo]);
    pg.dispose();
    pu.dispose();
  });

  test(`${type}: every one of the 4 fusion levels is wired to its own F̂g level (official index defect)`, () => {
    const p = new Params();
    const net = new GuidedRestorer(p, 'r', { backbone: TINY[type], guidance: true, aggregation: AGG }, new Rng(1));
    assert.equal(net.aggregation!.levels, 4);
    assert.equal(net.backbone.levels, 4);
    const x = images(5, [1, 32, 32, 3]);
    const g = images(6, [1, 32, 32, 3]);
    const base = net.call(x, g);
    for (let l = 0; l < 4; l++) {
      const fuseVars = p.entries().filter(([n]) => n.startsWith(`r.masa.fuse${l}.`) && /\.(alpha|block\.beta|block\.gamma)$/.test(n));
      assert.ok(fuseVars.length > 0, `fusion block at level ${l} exists`);
      for (const [, v] of fuseVars) tf.tidy(() => v.assign(tf.fill(v.shape, 0.5)));
      const y = net.call(x, g);
      assert.ok(maxAbsDiff(y, base) > 1e-5, `opening fusion level ${l} alone changes the output`);
      for (const [, v] of fuseVars) tf.tidy(() => v.assign(tf.zerosLike(v)));
      y.dispose();
    }
    tf.dispose([x, g, base]);
    p.dispose();
  });

  test(`${type}: odd sizes x=[1,37,53,3] g=[1,40,29,3] → [1,37,53,3]`, () => {
    const p = new Params();
    const net = new GuidedRestorer(p, 'r', { backbone: TINY[type], guidance: true, aggregation: AGG }, new Rng(2));
    openFusion(p, 'r');
    const x = images(7, [1, 37, 53, 3]);
    const g = images(8, [1, 40, 29, 3]);
    const y = net.call(x, g);
    assert.deepEqual(y.shape, [1, 37, 53, 3]);
    assert.ok(tf.tidy(() => tf.all(tf.isFinite(y)).dataSync()[0]) === 1, 'finite output');
    const yu = new GuidedRestorer(new Params(), 'u', { backbone: TINY[type], guidance: false }, new Rng(2)).call(x);
    assert.deepEqual(yu.shape, [1, 37, 53, 3], 'unguided odd size');
    tf.dispose([x, g, y, yu]);
    p.dispose();
  });

  test(`${type}: x=[2,16,16,3] g=[2,24,32,3]: gradients reach backbone, α/β/γ and matcher encoder on the backend under test; train step leaks nothing`, async () => {
    assert.equal(tf.getBackend(), await backendUnderTest());
    const p = new Params();
    const net = new GuidedRestorer(p, 'r', { backbone: TINY[type], guidance: true, aggregation: AGG }, new Rng(3));
    const x = images(9, [2, 16, 16, 3]);
    const g = images(10, [2, 24, 32, 3]);
    const target = images(11, [2, 16, 16, 3]);
    const check = (wantAll: string[]) => {
      const vars = p.trainable();
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => tf.mean(tf.abs(tf.sub(net.call(x, g), target))) as tf.Scalar, vars.map(([, v]) => v));
      const norm = new Map(vars.map(([n, v]) => [n, grads[v.name] ? tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0]) : 0]));
      tf.dispose([value, ...Object.values(grads)]);
      assert.equal(tf.memory().numTensors, before, 'a training step leaks no tensors');
      for (const w of wantAll) {
        const hits = [...norm].filter(([n]) => n.startsWith(w));
        assert.ok(hits.length > 0, `parameters under ${w}`);
        assert.ok(hits.some(([, v]) => v > 0), `a non-zero gradient under ${w}`);
      }
      return norm;
    };
    // at init (α = 0): α/β/γ get gradients, backbone too
    const scale = type === 'nafnet' ? 'r.masa.fuse0.block.beta' : 'r.masa.fuse0.alpha';
    check(['r.net.', scale]);
    openFusion(p, 'r');
    const norm = check(['r.net.', scale, 'r.masa.enc.conv0', 'r.masa.enc.conv3', 'r.masa.enc.blk3']);
    const encZero = [...norm].filter(([n, v]) => n.startsWith('r.masa.enc.') && v === 0).map(([n]) => n);
    assert.deepEqual(encZero, [], 'every matcher encoder weight gets a gradient once α ≠ 0');
    tf.dispose([x, g, target]);
    p.dispose();
  });
}

test('throws when the matcher has a different number of levels than the backbone (no silent index shift)', () => {
  assert.throws(
    () => new GuidedRestorer(new Params(), 'r', { backbone: TINY.restormer, guidance: true, aggregation: { ...AGG, levels: 5 } }, new Rng(0)),
    /restormer backbone has 4 fusion levels but the matcher has aggregation\.levels = 5/,
  );
  assert.throws(
    () => new GuidedRestorer(new Params(), 'r', { backbone: { type: 'nafnet', encBlocks: [1, 1, 1, 1], decBlocks: [1, 1, 1, 1] }, guidance: true, aggregation: AGG }, new Rng(0)),
    /nafnet backbone has 5 fusion levels but the matcher has aggregation\.levels = 4/,
  );
  // a 5-level NAFNet with a 5-level matcher is fine (the official NAFNet layout)
  const p = new Params();
  const net = new GuidedRestorer(p, 'r', { backbone: { type: 'nafnet', width: 4, encBlocks: [1, 1, 1, 1], decBlocks: [1, 1, 1, 1] }, guidance: true, aggregation: { nf: 2, blockSize: 1, levels: 5 } }, new Rng(0));
  const x = images(1, [1, 32, 32, 3]);
  const g = images(2, [1, 48, 48, 3]);
  const y = net.call(x, g);
  assert.deepEqual(y.shape, [1, 32, 32, 3]);
  tf.dispose([x, g, y]);
  p.dispose();
});

test('throws on config and argument errors', () => {
  assert.throws(() => new GuidedRestorer(new Params(), 'r', { backbone: { type: 'nafnet', widht: 8 } as never }, new Rng(0)), /invalid GuidedRestorer config[\s\S]*widht/);
  assert.throws(() => new GuidedRestorer(new Params(), 'r', { backbone: { type: 'unet' } as never }, new Rng(0)), /invalid GuidedRestorer config/);
  const net = new GuidedRestorer(new Params(), 'r', { backbone: TINY.nafnet, aggregation: AGG }, new Rng(0));
  const x = images(1, [1, 16, 16, 3]);
  assert.throws(() => net.call(x), /needs the guidance image g/);
  const g1 = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
  assert.throws(() => net.call(x, g1), /same batch size/);
  const g4 = tf.zeros([1, 16, 16, 4]) as tf.Tensor4D;
  assert.throws(() => net.call(x, g4), /must have 3 channels/);
  const plain = new GuidedRestorer(new Params(), 'u', { backbone: TINY.nafnet, guidance: false }, new Rng(0));
  assert.throws(() => plain.call(x, x), /guidance: false, but a guidance image was given/);
  tf.dispose([x, g1, g4]);
});

test('lrScale freezes the <prefix>.masa. group for K steps through the shared train loop, then uses matcherLr', async () => {
  const run = async (freezeMatcherSteps: number, steps: number, dir: string) => {
    const p = new Params();
    const net = new GuidedRestorer(p, 'r', { backbone: TINY.nafnet, aggregation: AGG }, new Rng(0));
    const start = p.snapshot();
    const stage: Stage<{ x: tf.Tensor4D; g: tf.Tensor4D; y: tf.Tensor4D }> = {
      params: p,
      getBatch: (step) => ({ x: images(100 + step, [2, 16, 16, 3]), g: images(200 + step, [2, 24, 24, 3]), y: images(300 + step, [2, 16, 16, 3]) }),
      loss: (b) => ({ total: tf.mean(tf.abs(tf.sub(net.call(b.x, b.g), b.y))) as tf.Scalar }),
      disposeBatch: (b) => tf.dispose([b.x, b.g, b.y]),
      lrScale: (name, step) => net.lrScale(name, step, { matcherLr: 0.5, freezeMatcherSteps }),
    };
    const cfg = { steps, lr: 1e-3, weightDecay: 0.01, emaDecay: 0, checkpointEvery: 1000, logEvery: 1 };
    await train(stage, cfg, { runDir: dir, meta: {}, quiet: true, maxStepsThisCall: Math.min(steps, 2) });
    const afterTwo = p.snapshot();
    if (steps > 2) await train(stage, cfg, { runDir: dir, meta: {}, quiet: true });
    const end = p.snapshot();
    const changed = (a: typeof start, b: typeof start, prefix: string) =>
      [...a].filter(([n]) => n.startsWith(prefix)).filter(([n, v]) => v.data.some((x, i) => x !== b.get(n)!.data[i])).length;
    const out = {
      masaChangedIn2: changed(start, afterTwo, 'r.masa.'),
      netChangedIn2: changed(start, afterTwo, 'r.net.'),
      masaChangedAtStep3: changed(afterTwo, end, 'r.masa.'),
      masaTotal: p.names().filter((n) => n.startsWith('r.masa.')).length,
    };
    p.dispose();
    return out;
  };
  const dir = tmpDir('tdr-guided-freeze-');
  try {
    const frozen = await run(2, 3, `${dir}/frozen`);
    assert.ok(frozen.netChangedIn2 > 0, 'backbone trains during the freeze');
    assert.equal(frozen.masaChangedIn2, 0, 'no masa parameter moves during the first 2 steps (not even by weight decay)');
    assert.ok(frozen.masaChangedAtStep3 > frozen.masaTotal / 4, `masa parameters move at step 3 (${frozen.masaChangedAtStep3} of ${frozen.masaTotal}; zero-init ones with zero gradient stay)`);
    const free = await run(0, 2, `${dir}/free`);
    assert.ok(free.masaChangedIn2 > free.masaTotal / 4, 'without the freeze, masa parameters move from step 1 (the test can fail)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
