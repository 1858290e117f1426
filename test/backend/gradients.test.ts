/**
 * Gradients of the backend under test — wasm with the tdr kernels (lib/backend/kernels.ts and
 * lib/backend/kernels/), or tfjs-node's TensorFlow kernels where that backend loads (TDR_BACKEND picks) —
 * against the cpu backend as oracle. Relative error max|backend−cpu| / max|cpu| ≤ 1e-4 on every output.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { WASM_KERNELS } from '../../lib/backend';
import { backendVsCpu, maxErrors, record, setupBackendAndOracle, UNDER_TEST, values } from './helpers';

const TOL = 1e-4;
type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

before(() => setupBackendAndOracle());
after(() => {
  // the numbers for the report
  process.stdout.write(`# max relative errors (${UNDER_TEST} vs cpu): ${JSON.stringify(maxErrors)}\n`);
});

function padName(p: Pad): string {
  return typeof p === 'string' ? p : JSON.stringify(p.slice(1, 3));
}

function check(kernels: string[], errors: number[]): void {
  errors.forEach((e, i) => {
    record(kernels[i], e);
    assert.ok(e <= TOL, `${kernels[i]}: relative error ${e.toExponential(2)} > ${TOL}`);
  });
}

const CONV_CASES: Array<{ x: Shape4; f: Shape4; s: number | [number, number]; p: Pad }> = [
  { x: [2, 9, 7, 3], f: [3, 5, 3, 4], s: 2, p: 'same' },
  { x: [2, 9, 7, 3], f: [3, 5, 3, 4], s: 1, p: 'same' },
  { x: [2, 9, 7, 3], f: [3, 5, 3, 4], s: 1, p: 'valid' },
  { x: [2, 9, 7, 3], f: [3, 5, 3, 4], s: 2, p: 'valid' },
  { x: [3, 8, 8, 5], f: [3, 1, 5, 2], s: 1, p: 'same' },
  { x: [3, 8, 8, 5], f: [1, 5, 5, 2], s: 2, p: 'same' },
  { x: [1, 8, 8, 2], f: [2, 2, 2, 6], s: 2, p: 'valid' },
  { x: [2, 11, 10, 4], f: [5, 3, 4, 3], s: 3, p: 'same' },
  { x: [2, 8, 9, 3], f: [3, 3, 3, 2], s: [2, 1], p: 'same' },
  { x: [2, 8, 9, 3], f: [1, 5, 3, 2], s: 1, p: [[0, 0], [1, 2], [0, 3], [0, 0]] },
  { x: [2, 7, 7, 4], f: [3, 3, 4, 4], s: 2, p: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [4, 16, 16, 8], f: [3, 3, 8, 16], s: 1, p: 'same' },
];

describe('forward conv2d / depthwiseConv2d, pad same and stride > 1 (explicit-padding wrapper)', () => {
  for (const c of CONV_CASES.filter((k) => k.p === 'same')) {
    test(`x=[${c.x}] f=[${c.f}] s=${c.s} p=same`, async () => {
      const { errors } = await backendVsCpu(() => {
        const x = tf.tensor(values(c.x, 1), c.x) as tf.Tensor4D;
        const f = tf.tensor(values(c.f, 2), c.f) as tf.Tensor4D;
        const fd = tf.tensor(values([c.f[0], c.f[1], c.f[2], 2], 3), [c.f[0], c.f[1], c.f[2], 2]) as tf.Tensor4D;
        const bias = tf.tensor(values([c.f[3]], 4), [c.f[3]]);
        return [
          tf.conv2d(x, f, c.s, 'same'),
          tf.fused.conv2d({ x, filter: f, bias, strides: c.s, pad: 'same', activation: 'relu' }),
          tf.depthwiseConv2d(x, fd, c.s, 'same'),
          tf.fused.depthwiseConv2d({ x, filter: fd, strides: c.s, pad: 'same', activation: 'relu' }),
        ];
      });
      check(['Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2D'], errors);
    });
  }
});

describe('Conv2DBackpropInput + Conv2DBackpropFilter (gradient of conv2d)', () => {
  for (const c of CONV_CASES) {
    test(`x=[${c.x}] f=[${c.f}] s=${c.s} p=${padName(c.p)}`, async () => {
      const { errors } = await backendVsCpu(() =>
        tf.grads((x: tf.Tensor, f: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.p).square().sum())([
          tf.tensor(values(c.x, 1), c.x),
          tf.tensor(values(c.f, 2), c.f),
        ]),
      );
      check(['Conv2DBackpropInput', 'Conv2DBackpropFilter'], errors);
    });
  }
  test('fused conv2d + bias + relu x=[2,16,16,8] f=[3,3,8,12] s=1 p=same', async () => {
    const { errors } = await backendVsCpu(() =>
      tf.grads((x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
        tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, bias: b, strides: 1, pad: 'same', activation: 'relu' }).sum(),
      )([tf.tensor(values([2, 16, 16, 8], 3), [2, 16, 16, 8]), tf.tensor(values([3, 3, 8, 12], 4), [3, 3, 8, 12]), tf.tensor(values([12], 5))]),
    );
    check(['Conv2DBackpropInput', 'Conv2DBackpropFilter', 'bias'], errors);
  });
});

const DW_CASES: Array<{ x: Shape4; f: Shape4; s: number | [number, number]; p: Pad }> = [
  { x: [2, 9, 7, 3], f: [3, 3, 3, 1], s: 1, p: 'same' },
  { x: [2, 9, 7, 3], f: [3, 5, 3, 2], s: 2, p: 'same' },
  { x: [2, 9, 7, 3], f: [3, 5, 3, 2], s: 1, p: 'valid' },
  { x: [3, 10, 10, 4], f: [5, 3, 4, 1], s: 2, p: 'valid' },
  { x: [2, 8, 9, 6], f: [3, 1, 6, 3], s: 1, p: [[0, 0], [1, 1], [0, 2], [0, 0]] },
  { x: [4, 16, 16, 16], f: [3, 3, 16, 1], s: 1, p: 'same' },
];

describe('DepthwiseConv2dNativeBackpropInput + ...BackpropFilter (gradient of depthwiseConv2d)', () => {
  for (const c of DW_CASES) {
    test(`x=[${c.x}] f=[${c.f}] s=${c.s} p=${padName(c.p)}`, async () => {
      const { errors } = await backendVsCpu(() =>
        tf.grads((x: tf.Tensor, f: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.p).square().sum())([
          tf.tensor(values(c.x, 6), c.x),
          tf.tensor(values(c.f, 7), c.f),
        ]),
      );
      check(['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'], errors);
    });
  }
});

describe('UnsortedSegmentSum (gradient of gather)', () => {
  for (const [table, ids] of [
    [[10, 4], [3, 1, 3, 9, 0, 3]],
    [[7, 2, 3], [6, 6, 0]],
  ] as Array<[number[], number[]]>) {
    test(`params=[${table}] indices=[${ids.length}]`, async () => {
      const { errors } = await backendVsCpu(() => {
        const w = tf.tensor(values([ids.length, ...table.slice(1)], 8), [ids.length, ...table.slice(1)]);
        return tf.grads((p: tf.Tensor) => tf.gather(p, tf.tensor1d(ids, 'int32')).mul(w).sum())([tf.tensor(values(table, 9), table)]);
      });
      check(['UnsortedSegmentSum'], errors);
    });
  }
  test('direct: ids out of range are dropped, x=[5,2] ids=[5] numSegments=3', async () => {
    const { errors } = await backendVsCpu(() => [
      tf.unsortedSegmentSum(tf.tensor(values([5, 2], 10), [5, 2]), tf.tensor1d([0, 2, 0, 1, 2], 'int32'), 3),
    ]);
    check(['UnsortedSegmentSum'], errors);
  });
});

describe('BatchMatMul / _FusedMatMul (explicit transposes, batch loop)', () => {
  const MM: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
    { a: [5, 7], b: [7, 3], ta: false, tb: false },
    { a: [7, 5], b: [7, 3], ta: true, tb: false },
    { a: [5, 7], b: [3, 7], ta: false, tb: true },
    { a: [7, 5], b: [3, 7], ta: true, tb: true },
    { a: [6, 64, 40], b: [6, 40, 48], ta: false, tb: false },
    { a: [2, 3, 40, 64], b: [2, 3, 48, 40], ta: true, tb: true },
    { a: [4, 64, 40], b: [40, 48], ta: false, tb: false },
  ];
  for (const c of MM) {
    test(`a=[${c.a}] b=[${c.b}] transposeA=${c.ta} transposeB=${c.tb}`, async () => {
      const { errors } = await backendVsCpu(() => {
        const a = tf.tensor(values(c.a, 11), c.a);
        const b = tf.tensor(values(c.b, 12), c.b);
        const y = tf.matMul(a, b, c.ta, c.tb);
        // tfjs-core's BatchMatMul gradient does not reduce broadcast batch dims: forward only then
        if (a.rank !== b.rank) return [y, y, y];
        const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, c.ta, c.tb).square().sum())([a, b]);
        return [y, da, db];
      });
      check(['BatchMatMul', 'BatchMatMul', 'BatchMatMul'], errors);
    });
  }
  test('fused a=[9,6] b=[4,6] transposeB=true bias=[4] relu', async () => {
    const { errors } = await backendVsCpu(() => {
      const a = tf.tensor(values([9, 6], 13), [9, 6]);
      const b = tf.tensor(values([4, 6], 14), [4, 6]);
      const bias = tf.tensor(values([4], 15), [4]);
      const y = tf.fused.matMul({ a, b, transposeB: true, bias, activation: 'relu' });
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.fused.matMul({ a: p as tf.Tensor2D, b: q as tf.Tensor2D, transposeB: true, bias, activation: 'relu' }).sum())([a, b]);
      return [y, ...g];
    });
    check(['_FusedMatMul', '_FusedMatMul', '_FusedMatMul'], errors);
  });
});

describe('Slice (heap-view copy)', () => {
  const S: Array<{ x: number[]; begin: number[]; size: number[] }> = [
    { x: [4, 5, 6, 3], begin: [1, 2, 0, 0], size: [2, 3, 6, 3] },
    { x: [4, 5, 6, 3], begin: [0, 1, 2, 1], size: [4, 3, 3, 2] },
    { x: [10], begin: [3], size: [5] },
    { x: [3, 7], begin: [1, 0], size: [2, 7] },
    { x: [2, 3, 4, 5, 6], begin: [1, 0, 1, 2, 3], size: [1, 3, 2, 3, 2] },
  ];
  for (const c of S) {
    test(`x=[${c.x}] begin=[${c.begin}] size=[${c.size}]`, async () => {
      const { errors } = await backendVsCpu(() => [tf.slice(tf.tensor(values(c.x, 16), c.x), c.begin, c.size)]);
      check(['Slice'], errors);
    });
  }
  test('empty slice x=[4,5] begin=[2,0] size=[0,5]', async () => {
    const { shapes } = await backendVsCpu(() => [tf.slice(tf.tensor(values([4, 5], 17), [4, 5]), [2, 0], [0, 5])]);
    assert.deepEqual(shapes[0], [0, 5]);
  });
});

describe('pooling, resize and attention gradients a U-Net / transformer step uses', () => {
  test('maxPool 3x3 s=2 p=same x=[2,9,7,3] (all-negative windows)', async () => {
    const { errors } = await backendVsCpu(() =>
      tf.grads((x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same').square().sum())([tf.tensor(values([2, 9, 7, 3], 25), [2, 9, 7, 3]).sub(0.5)]),
    );
    check(['MaxPoolGrad'], errors);
  });
  test('maxPool 2x2 s=2 x=[3,8,6,4]', async () => {
    const { errors } = await backendVsCpu(() =>
      tf.grads((x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid').square().sum())([tf.tensor(values([3, 8, 6, 4], 18), [3, 8, 6, 4])]),
    );
    check(['MaxPoolGrad'], errors);
  });
  test('resizeNearestNeighbor x2 x=[3,5,4,2] (cpu oracle patched for batch > 1)', async () => {
    const { errors } = await backendVsCpu(() => {
      const w = tf.tensor(values([3, 10, 8, 2], 19), [3, 10, 8, 2]);
      return tf.grads((x: tf.Tensor) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [10, 8]).mul(w).sum())([
        tf.tensor(values([3, 5, 4, 2], 20), [3, 5, 4, 2]),
      ]);
    });
    check(['ResizeNearestNeighborGrad'], errors);
  });
  test('resizeNearestNeighbor x3 x=[2,4,5,3] (integer factor: block sums) and 5x4 -> 7x9 (stock path)', async () => {
    for (const [x, to] of [[[2, 4, 5, 3], [12, 15]], [[2, 5, 4, 3], [7, 9]]] as Array<[number[], [number, number]]>) {
      const { errors } = await backendVsCpu(() => {
        const w = tf.tensor(values([x[0], to[0], to[1], x[3]], 23), [x[0], to[0], to[1], x[3]]);
        return tf.grads((t: tf.Tensor) => tf.image.resizeNearestNeighbor(t as tf.Tensor4D, to).mul(w).sum())([tf.tensor(values(x, 24), x)]);
      });
      check(['ResizeNearestNeighborGrad'], errors);
    }
  });
  test('concat along every axis, short and long inner runs (values)', async () => {
    const { errors } = await backendVsCpu(() => {
      const outs: tf.Tensor[] = [];
      for (const axis of [0, 1, 2, 3]) {
        const a = tf.tensor(values([2, 3, 4, 5], 30 + axis), [2, 3, 4, 5]);
        const shapeB = [2, 3, 4, 5];
        shapeB[axis] = axis === 3 ? 70 : 2;
        outs.push(tf.concat([a, tf.tensor(values(shapeB, 40 + axis), shapeB), a], axis));
      }
      return outs;
    });
    check(['Concat', 'Concat', 'Concat', 'Concat'], errors);
  });
  test('concat gradient = SplitV: channels 3 + 5 + 2 and rows 2 + 4', async () => {
    const { errors } = await backendVsCpu(() => {
      const a = tf.tensor(values([2, 6, 4, 3], 25), [2, 6, 4, 3]);
      const b = tf.tensor(values([2, 6, 4, 5], 26), [2, 6, 4, 5]);
      const c = tf.tensor(values([2, 6, 4, 2], 27), [2, 6, 4, 2]);
      const w = tf.tensor(values([2, 6, 4, 10], 28), [2, 6, 4, 10]);
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => tf.concat([p, q, r], 3).mul(w).sum())([a, b, c]);
      return [...g, ...tf.split(tf.tensor(values([2, 6, 4, 3], 29), [2, 6, 4, 3]), [2, 4], 1)];
    });
    check(['SplitV', 'SplitV', 'SplitV', 'SplitV', 'SplitV'], errors);
  });
  test('resizeBilinear 5x4 -> 9x11 x=[2,5,4,3]', async () => {
    const { errors } = await backendVsCpu(() => {
      const w = tf.tensor(values([2, 9, 11, 3], 21), [2, 9, 11, 3]);
      return tf.grads((x: tf.Tensor) => tf.image.resizeBilinear(x as tf.Tensor4D, [9, 11]).mul(w).sum())([
        tf.tensor(values([2, 5, 4, 3], 22), [2, 5, 4, 3]),
      ]);
    });
    check(['ResizeBilinearGrad'], errors);
  });
  test('layer norm + softmax attention x=[2,16,8] (concat, moments, batched matMul)', async () => {
    const { errors } = await backendVsCpu(() => {
      const wq = tf.tensor(values([8, 8], 23), [8, 8]);
      const f = (x: tf.Tensor): tf.Tensor => {
        const { mean, variance } = tf.moments(x, -1, true);
        const n = x.sub(mean).mul(tf.rsqrt(variance.add(1e-5))); // [2,16,8]
        const q = tf.matMul(n.reshape([32, 8]), wq).reshape([2, 16, 8]);
        const att = tf.softmax(tf.matMul(q, n, false, true).div(Math.sqrt(8))); // [2,16,16]
        return tf.concat([tf.matMul(att, n), x], 2).square().sum();
      };
      return tf.grads(f)([tf.tensor(values([2, 16, 8], 24), [2, 16, 8])]);
    });
    check(['attention'], errors);
  });
});

describe('kernel checks (tdr wasm kernels)', { skip: UNDER_TEST !== 'wasm' && 'these are the error messages of the tdr wasm kernels' }, () => {
  test('throws when dilations > 1 (DepthwiseConv2dNativeBackpropFilter)', () => {
    const x = tf.zeros([1, 5, 5, 2]);
    const dy = tf.zeros([1, 5, 5, 2]);
    assert.throws(
      () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dilations: 2, filterShape: [3, 3, 2, 1] } as never),
      /DepthwiseConv2dNativeBackpropFilter \(tdr wasm kernel\): dilations must be 1, got \[2,2\]/,
    );
    tf.dispose([x, dy]);
  });
  test('throws when dataFormat is NCHW (Conv2DBackpropFilter)', () => {
    const x = tf.zeros([1, 5, 5, 2]);
    const dy = tf.zeros([1, 5, 5, 3]);
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] } as never),
      /dataFormat must be NHWC, got NCHW/,
    );
    tf.dispose([x, dy]);
  });
  test('throws when dy has the wrong shape (Conv2DBackpropInput)', () => {
    const dy = tf.zeros([1, 4, 5, 3]);
    const filter = tf.zeros([3, 3, 2, 3]);
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [1, 5, 5, 2] } as never),
      /dy \[1,4,5,3\] must be \[1,5,5,3\]/,
    );
    tf.dispose([dy, filter]);
  });
  test('throws when dy has the wrong channels (DepthwiseConv2dNativeBackpropInput: Ci·M) and when the filter in-channels differ (Conv2DBackpropFilter)', () => {
    const dy = tf.zeros([1, 5, 5, 3]);
    const filter = tf.zeros([3, 3, 2, 2]);
    assert.throws(
      () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { strides: 1, pad: 'same', dilations: 1, inputShape: [1, 5, 5, 2] } as never),
      /DepthwiseConv2dNativeBackpropInput \(tdr wasm kernel\): dy \[1,5,5,3\] must be \[1,5,5,4\] for input \[1,5,5,2\] and filter \[3,3,2,2\]/,
    );
    const x = tf.zeros([1, 5, 5, 2]);
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 4, 3] } as never),
      /Conv2DBackpropFilter \(tdr wasm kernel\): filter \[3,3,4,3\] in-channels must equal x channels 2/,
    );
    tf.dispose([dy, filter, x]);
  });
});

/**
 * One call per registered kernel, outside any tidy (a tidy would hide a kernel's leaked
 * intermediates): tensors and wasm data ids unchanged once the result and inputs are disposed.
 */
describe('no leaks', () => {
  const x = (): tf.Tensor4D => tf.tensor4d(values([2, 9, 7, 4], 30), [2, 9, 7, 4]);
  const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor[] => [
    tf.engine().runKernel(name, inputs, attrs as never) as tf.Tensor,
    ...Object.values(inputs),
  ];
  const calls: Record<(typeof WASM_KERNELS)[number], () => tf.Tensor[]> = {
    Conv2DBackpropFilter: () =>
      run('Conv2DBackpropFilter', { x: x(), dy: tf.ones([2, 5, 4, 3]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 5, 4, 3] }),
    Conv2DBackpropInput: () =>
      run('Conv2DBackpropInput', { dy: tf.ones([2, 5, 4, 3]), filter: tf.ones([3, 5, 4, 3]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 9, 7, 4] }),
    DepthwiseConv2dNativeBackpropFilter: () =>
      run('DepthwiseConv2dNativeBackpropFilter', { x: x(), dy: tf.ones([2, 5, 4, 8]) }, { strides: 2, pad: 'same', dilations: 1, filterShape: [3, 3, 4, 2] }),
    DepthwiseConv2dNativeBackpropInput: () =>
      run('DepthwiseConv2dNativeBackpropInput', { dy: tf.ones([2, 5, 4, 8]), filter: tf.ones([3, 3, 4, 2]) }, { strides: 2, pad: 'same', dilations: 1, inputShape: [2, 9, 7, 4] }),
    UnsortedSegmentSum: () =>
      run('UnsortedSegmentSum', { x: tf.ones([6, 3]), segmentIds: tf.tensor1d([0, 1, 1, 4, 2, 0], 'int32') }, { numSegments: 5 }),
    BatchMatMul: () => run('BatchMatMul', { a: tf.ones([3, 64, 40]), b: tf.ones([3, 48, 40]) }, { transposeA: false, transposeB: true }),
    _FusedMatMul: () =>
      run('_FusedMatMul', { a: tf.ones([1, 6, 5]), b: tf.ones([1, 6, 4]), bias: tf.ones([4]) }, { transposeA: true, transposeB: false, activation: 'relu' }),
    MaxPoolGrad: () =>
      run('MaxPoolGrad', { dy: tf.ones([2, 4, 3, 4]), input: x(), output: tf.ones([2, 4, 3, 4]) }, { filterSize: 2, strides: 2, pad: 'valid' }),
    Conv2D: () => run('Conv2D', { x: x(), filter: tf.ones([1, 3, 4, 2]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1 }),
    FusedConv2D: () =>
      run('FusedConv2D', { x: x(), filter: tf.ones([1, 3, 4, 2]), bias: tf.ones([2]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1, activation: 'relu' }),
    DepthwiseConv2dNative: () =>
      run('DepthwiseConv2dNative', { x: x(), filter: tf.ones([1, 3, 4, 1]) }, { strides: 2, pad: 'same', dilations: 1 }),
    FusedDepthwiseConv2D: () =>
      run('FusedDepthwiseConv2D', { x: x(), filter: tf.ones([1, 3, 4, 1]), bias: tf.ones([4]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1, activation: 'relu' }),
    Slice: () => run('Slice', { x: x() }, { begin: [1, 2, 0, 1], size: [1, 5, 7, 2] }),
    SplitV: () => {
      const xs = { x: x() };
      return [...(tf.engine().runKernel('SplitV', xs, { numOrSizeSplits: [1, 3], axis: 3 } as never) as unknown as tf.Tensor[]), xs.x];
    },
    Concat: () => {
      const xs = [x(), tf.ones([2, 9, 7, 2]), tf.ones([2, 9, 7, 100])];
      return [tf.engine().runKernel('Concat', xs as never, { axis: 3 } as never) as tf.Tensor, ...xs];
    },
    ResizeNearestNeighborGrad: () => run('ResizeNearestNeighborGrad', { images: x(), dy: tf.ones([2, 18, 14, 4]) }, { alignCorners: false, halfPixelCenters: false }),
  };
  for (const name of WASM_KERNELS) {
    test(`${name}: numTensors and wasm data ids flat`, () => {
      const before = tf.memory().numTensors;
      const ids = tf.engine().backend.numDataIds();
      tf.dispose(calls[name]());
      assert.equal(tf.memory().numTensors, before);
      assert.equal(tf.engine().backend.numDataIds(), ids);
    });
  }
  test('conv2d train gradient x=[2,9,7,4] f=[3,3,4,5]: numTensors flat', () => {
    const xt = x();
    const f = tf.ones([3, 3, 4, 5]);
    const before = tf.memory().numTensors;
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').sum())([xt, f]);
    tf.dispose(g);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([xt, f]);
  });
});

test('step (the ReLU derivative; a two-op kernel on tensorflow): NaN, ±Infinity, ±0 and alpha as the cpu backend; ReLU gradient', async () => {
  const xs = [NaN, Infinity, -Infinity, 0, -0, 2.5, -3, 1e-3, -1e-3];
  const on = async (be: string, f: () => tf.Tensor): Promise<number[]> => {
    await tf.setBackend(be);
    try {
      return Array.from(tf.tidy(f).dataSync());
    } finally {
      await tf.setBackend(UNDER_TEST);
    }
  };
  for (const alpha of [0, 0.2]) {
    const f = () => tf.step(tf.tensor1d(xs), alpha);
    assert.deepEqual(await on(UNDER_TEST, f), await on('cpu', f), `step alpha ${alpha} on ${UNDER_TEST}`);
  }
  const g = () => tf.grad((x: tf.Tensor) => tf.relu(x).mul(tf.range(0, 9)).sum())(tf.tensor1d([1, -1, 0, 2, -2, 3, -3, 0.5, -0.5]));
  assert.deepEqual(await on(UNDER_TEST, g), [0, 0, 0, 3, 0, 5, 0, 7, 0]);
  assert.deepEqual(await on('cpu', g), [0, 0, 0, 3, 0, 5, 0, 7, 0]);
});
