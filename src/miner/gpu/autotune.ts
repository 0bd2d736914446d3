// Picks the fastest correct kernel config for this adapter and browser, and remembers it in IndexedDB.
import { openDB } from 'idb';
import * as v from 'valibot';
import type { AdapterInfo } from '../../protocol/messages.ts';
import { GemmKernel } from './gemm.ts';
import { CANDIDATES, configName, unfitReason, type KernelConfig } from './kernel-config.ts';

/** Timing shape: a typical unit's width; deep enough to reach steady state, small enough for SwiftShader. */
const TUNE_SHAPE = { m: 256, n: 256, k: 512 };
const TUNE_RUNS = 3;
/**
 * A candidate whose warm-up run is under this fraction of the best median so far is not timed further: on
 * SwiftShader the tiled kernels run 3-5x slower than the direct ones, and each run of them costs about a second.
 */
const PRUNE_BELOW_BEST = 0.5;
/**
 * On a fallback (CPU) adapter such as SwiftShader, workgroup barriers are emulated by switching between threads:
 * the tiled kernels ran 10-20x slower than the direct ones there and take about 2 s each to compile, so they are
 * not tried.
 */
const SKIP_ON_FALLBACK_ADAPTER: ReadonlySet<KernelConfig['family']> = new Set(['tiled']);
/**
 * Sizes that exercise every edge guard of both variants (multiples of 4 that divide no tile for vec4, odd ones
 * for scalar); a config that gets either wrong on this adapter is never used.
 */
const ALIGNED_CHECK = { m: 68, n: 44, k: 36 };
const ODD_CHECK = { m: 67, n: 45, k: 33 };

const TUNING_DB = 'ergon-gpu';
const TUNING_STORE = 'tuning';

const Count = v.pipe(v.number(), v.integer(), v.minValue(1));
const Blocking = { wgX: Count, wgY: Count, tm: Count, tn: Count };
// Records from before the kernel families had no `family`: they fail this parse, so the adapter is tuned again.
const Config = v.variant('family', [
  v.object({ family: v.literal('tiled'), ...Blocking, tileK: Count }),
  v.object({ family: v.picklist(['direct', 'subgroup']), ...Blocking }),
]);

const TuningRecord = v.object({
  adapterKey: v.string(),
  config: Config,
  gflops: v.number(),
  tunedAtMs: v.number(),
  trials: v.array(v.object({ name: v.string(), gflops: v.nullable(v.number()), error: v.nullable(v.string()) })),
});
export type TuningRecord = v.InferOutput<typeof TuningRecord>;

/** Tuning is redone when any of these change: another GPU, another driver description or another browser. */
export function adapterKey(adapter: AdapterInfo, userAgent: string): string {
  return JSON.stringify([adapter.vendor, adapter.architecture, adapter.device, adapter.description, userAgent]);
}

async function openTuningDb() {
  return openDB(TUNING_DB, 1, {
    upgrade(db) {
      db.createObjectStore(TUNING_STORE);
    },
  });
}

/** The stored tuning for this adapter, if there is a valid one whose config still fits the device. */
export async function storedTuning(key: string, device: GPUDevice): Promise<TuningRecord | undefined> {
  const db = await openTuningDb();
  try {
    const parsed = v.safeParse(TuningRecord, await db.get(TUNING_STORE, key));
    if (!parsed.success || parsed.output.adapterKey !== key || unfitReason(parsed.output.config, device)) return undefined;
    return parsed.output;
  } finally {
    db.close();
  }
}

/**
 * Times the vec4 variant of every fitting candidate (units are almost always aligned), drops any that computes a
 * wrong product, and keeps the fastest whose scalar variant is also right. Only the winner's scalar variant is
 * compiled: compiling is most of a tune's time (over a second per tiled kernel on SwiftShader). Every candidate
 * is compiled before any is timed, so that compiling in the background does not slow the timed runs.
 */
export async function tune(device: GPUDevice, key: string): Promise<TuningRecord> {
  const trials: TuningRecord['trials'] = [];
  const passed: { config: KernelConfig; gflops: number; kernel: GemmKernel; trial: TuningRecord['trials'][number] }[] = [];
  const operands = randomOperands(TUNE_SHAPE.m, TUNE_SHAPE.k, TUNE_SHAPE.n);
  const fallback = device.adapterInfo.isFallbackAdapter;
  const compiled = CANDIDATES.map((config) => {
    const unfit = fallback && SKIP_ON_FALLBACK_ADAPTER.has(config.family)
      ? `${config.family} kernels are not tried on a fallback (CPU) adapter`
      : unfitReason(config, device);
    return { config, unfit, kernel: unfit ? undefined : GemmKernel.create(device, config, ['vec4'], []) };
  });
  // Each failure is reported below, in turn.
  await Promise.allSettled(compiled.map((candidate) => candidate.kernel));
  const tuneOps = 2 * TUNE_SHAPE.m * TUNE_SHAPE.n * TUNE_SHAPE.k;
  let bestGflops = 0;
  for (const { config, unfit, kernel: compiling } of compiled) {
    const name = configName(config);
    if (unfit || !compiling) {
      trials.push({ name, gflops: null, error: unfit });
      continue;
    }
    let kernel: GemmKernel | undefined;
    try {
      kernel = await compiling;
      await checkProduct(kernel, ALIGNED_CHECK);
      kernel.upload(TUNE_SHAPE.m, TUNE_SHAPE.k, TUNE_SHAPE.n, operands.a, operands.b);
      // Warm-up: the first dispatches also learn the kernel's speed, which sizes the later ones.
      const warmGflops = tuneOps / (await kernel.compute()).gpuSeconds / 1e9;
      if (warmGflops < PRUNE_BELOW_BEST * bestGflops) {
        trials.push({ name, gflops: warmGflops, error: `not timed further: warm-up under ${PRUNE_BELOW_BEST} of the best` });
        kernel.destroy();
        continue;
      }
      const seconds: number[] = [];
      for (let i = 0; i < TUNE_RUNS; i++) seconds.push((await kernel.compute()).gpuSeconds);
      seconds.sort((x, y) => x - y);
      const gflops = tuneOps / seconds[Math.floor(seconds.length / 2)] / 1e9;
      bestGflops = Math.max(bestGflops, gflops);
      const trial = { name, gflops, error: null };
      trials.push(trial);
      passed.push({ config, gflops, kernel, trial });
    } catch (err) {
      trials.push({ name, gflops: null, error: (err as Error).message });
      kernel?.destroy();
    }
  }
  passed.sort((x, y) => y.gflops - x.gflops);
  let best: { config: KernelConfig; gflops: number } | undefined;
  for (const candidate of passed) {
    try {
      if (!best) {
        await checkProduct(candidate.kernel, ODD_CHECK);
        best = candidate;
      }
    } catch (err) {
      Object.assign(candidate.trial, { error: (err as Error).message });
    } finally {
      candidate.kernel.destroy();
    }
  }
  if (!best) throw new Error(`no GEMM kernel config works on this adapter: ${trials.map((t) => `${t.name}: ${t.error}`).join('; ')}`);
  const record: TuningRecord = { adapterKey: key, config: best.config, gflops: best.gflops, tunedAtMs: Date.now(), trials };
  const db = await openTuningDb();
  try {
    await db.put(TUNING_STORE, record, key);
  } finally {
    db.close();
  }
  return record;
}

async function checkProduct(kernel: GemmKernel, shape: { m: number; k: number; n: number }): Promise<void> {
  const { m, k, n } = shape;
  const { a, b } = randomOperands(m, k, n);
  const { c } = await kernel.run(m, k, n, a, b);
  const error = maxRelativeError(c, a, b, m, k, n);
  if (!(error < 1e-5)) throw new Error(`wrong ${kernel.variant} product at ${m}x${k}x${n} on this adapter (max relative error ${error})`);
}

function randomOperands(m: number, k: number, n: number): { a: Float32Array<ArrayBuffer>; b: Float32Array<ArrayBuffer> } {
  const fill = (count: number) => Float32Array.from({ length: count }, () => Math.random() * 2 - 1);
  return { a: fill(m * k), b: fill(k * n) };
}

function maxRelativeError(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number): number {
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = 0;
      for (let p = 0; p < k; p++) ref += a[i * k + p] * b[p * n + j];
      maxErr = Math.max(maxErr, Math.abs(c[i * n + j] - ref));
      maxRef = Math.max(maxRef, Math.abs(ref));
    }
  }
  return maxErr / maxRef;
}
