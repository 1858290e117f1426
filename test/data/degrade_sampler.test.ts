/**
 * Regression test for the official all-in-one task sampler bug:
 * mrluin/TextualDegRemoval `data/guidance_generation_dataset.py` `PairedLQHQDataset`
 * picks its task with `random.choice([i in range(len(self.tasks))])` — a one-element list holding a
 * boolean, so index 1 (True) for the first n dataset indices and index 0 (False) afterwards: only
 * tasks 0 and 1 are ever used. Our `sampleTask` must be uniform over all tasks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../lib/util/rng';
import { ALL_IN_ONE_TASKS, sampleTask, degradeWithSpec } from '../../lib/data/degrade';
import { makeImage } from '../../lib/data/image';

/** Pearson chi-square statistic of counts against a uniform expectation. */
function chiSquare(counts: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const e = n / counts.length;
  return counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
}
// chi-square critical value, 4 degrees of freedom, p = 0.001 (standard table): 18.467
const CHI2_DF4_P001 = 18.467;

test('sampleTask over the all-in-one set (5 tasks, 10 000 draws): uniform by chi-square and ±5 %', () => {
  assert.deepEqual(
    ALL_IN_ONE_TASKS.map((t) => t.name),
    ['noise15', 'noise25', 'noise50', 'rain', 'haze'],
  );
  const rng = new Rng(2024);
  const counts = new Map(ALL_IN_ONE_TASKS.map((t) => [t.name, 0]));
  const N = 10_000;
  for (let i = 0; i < N; i++) {
    const t = sampleTask(rng, ALL_IN_ONE_TASKS);
    counts.set(t.name, counts.get(t.name)! + 1);
  }
  const c = [...counts.values()];
  assert.ok(c.every((x) => x > 0), `every task reachable: ${JSON.stringify([...counts])}`);
  for (const x of c) assert.ok(Math.abs(x / N - 0.2) < 0.01, `frequency ${x / N} not within 0.2 ± 0.01`);
  assert.ok(chiSquare(c) < CHI2_DF4_P001, `chi-square ${chiSquare(c)}`);
});

test('the official boolean-choice sampler fails the same check (tasks 2..4 never drawn)', () => {
  // re-creation of the bug's behaviour (not its code): index = Number(i < nTasks) for dataset index i
  const n = ALL_IN_ONE_TASKS.length;
  const counts = new Array(n).fill(0);
  for (let i = 0; i < 10_000; i++) counts[Number(i < n)]++;
  assert.deepEqual(counts.slice(2), [0, 0, 0]);
  assert.ok(chiSquare(counts) > CHI2_DF4_P001);
});

test('sampleTask is reproducible per seed and rejects an empty task list', () => {
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 50 }, () => sampleTask(rng, ALL_IN_ONE_TASKS).name);
  };
  assert.deepEqual(draw(1), draw(1));
  assert.notDeepEqual(draw(1), draw(2));
  assert.throws(() => sampleTask(new Rng(0), []), /sampleTask: tasks must be a non-empty array/);
});

test('every all-in-one spec degrades with its fixed parameters', () => {
  const img = makeImage(16, 16, new Float32Array(16 * 16 * 3).fill(0.5));
  for (const spec of ALL_IN_ONE_TASKS) {
    const r = degradeWithSpec(img, spec, 0);
    assert.equal(r.task, spec.task);
    for (const [k, v] of Object.entries(spec.params)) assert.equal((r.params as unknown as Record<string, unknown>)[k], v);
  }
});
