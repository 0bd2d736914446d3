// Exposes the miner's GPU code to Playwright: run a kernel config on seeded operands and check it in f64.
import { openDB } from 'idb';
import { acquireDevice } from '../../../src/miner/gpu/device.ts';
import { adapterKey, storedTuning, tune } from '../../../src/miner/gpu/autotune.ts';
import { UnitCancelledError } from '../../../src/miner/cancelled.ts';
import { CodedError } from '../../../src/protocol/errors.ts';
import { GpuClient } from '../../../src/miner/gpu-client.ts';
import { runGemm } from '../../../src/miner/kinds/gemm.ts';
import { DISPATCH_BUDGET_MS, GemmKernel } from '../../../src/miner/gpu/gemm.ts';
import { CANDIDATES, configName, SMALL_M_CONFIGS, unfitReason, type KernelConfig } from '../../../src/miner/gpu/kernel-config.ts';
import { mulberry32 } from '../../helpers/random.ts';

const acquired = acquireDevice();
const kernels = new Map<string, GemmKernel>();
/** Every config the miner may run: the autotuner's candidates and the small-M ones, by name. */
const ALL_CONFIGS = new Map<string, KernelConfig>([...CANDIDATES, ...SMALL_M_CONFIGS.map((small) => small.config)].map((config) => [configName(config), config]));

function operands(count: number, seed: number): Float32Array<ArrayBuffer> {
  const next = mulberry32(seed);
  return Float32Array.from({ length: count }, () => next() * 2 - 1);
}

/** Max |C - ref| / max |ref| over every element, or over `sampleRows` seeded rows for large products. */
function checkProduct(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, sampleRows: number): number {
  const next = mulberry32(99);
  const rows = m <= sampleRows ? [...Array(m).keys()] : Array.from({ length: sampleRows }, () => Math.floor(next() * m));
  let maxErr = 0;
  let maxRef = 0;
  for (const i of rows) {
    for (let j = 0; j < n; j++) {
      let ref = 0;
      for (let p = 0; p < k; p++) ref += a[i * k + p] * b[p * n + j];
      maxErr = Math.max(maxErr, Math.abs(c[i * n + j] - ref));
      maxRef = Math.max(maxRef, Math.abs(ref));
    }
  }
  return maxRef === 0 ? maxErr : maxErr / maxRef;
}

const harness = {
  /** Every config the miner may run, with its family and why it cannot run on this device (null: it can). */
  async configs(): Promise<{ name: string; family: KernelConfig['family']; unfit: string | null }[]> {
    const { device } = await acquired;
    return [...ALL_CONFIGS].map(([name, config]) => ({ name, family: config.family, unfit: unfitReason(config, device) }));
  },

  /**
   * Runs a config on seeded operands (its kernel compiled once per page and kept, as the miner keeps it).
   * 'default' is GemmKernel.create(device) as the miner gets it, which switches to the small-M config for
   * GEMV-like shapes; a named config, or one given whole, always runs itself.
   */
  async gemm(which: string | KernelConfig, m: number, k: number, n: number, seed: number, runs = 1, dispatchBudgetMs = DISPATCH_BUDGET_MS) {
    const { device } = await acquired;
    const name = typeof which === 'string' ? which : configName(which);
    let kernel = kernels.get(name);
    if (!kernel) {
      const config = typeof which === 'string' ? ALL_CONFIGS.get(name) : which;
      if (name !== 'default' && !config) throw new Error(`no kernel config ${name}`);
      kernel = await (config ? GemmKernel.create(device, config, ['vec4', 'scalar'], []) : GemmKernel.create(device));
      kernels.set(name, kernel);
    }
    kernel.dispatchBudgetMs = dispatchBudgetMs;
    const a = operands(m * k, seed);
    const b = operands(k * n, seed + 1);
    let last = await kernel.run(m, k, n, a, b);
    for (let i = 1; i < runs; i++) last = await kernel.run(m, k, n, a, b);
    return {
      config: configName(kernel.activeConfig), variant: kernel.variant, maxRelativeError: checkProduct(last.c, a, b, m, k, n, 24),
      dispatches: last.dispatches, gpuSeconds: last.gpuSeconds, submitSeconds: last.submitSeconds, gflops: (2 * m * k * n) / last.gpuSeconds / 1e9,
      timestampQuery: device.features.has('timestamp-query'),
    };
  },

  /**
   * Gives one kernel all the units at once, as the worker does when the page sends the next unit early, and aborts
   * the signal of unit `cancel` straight away: it waits for a free operand slot, so its turn has not come.
   * Then runs one more unit on the same kernel. Reports each unit's error against f64, or that it was cancelled,
   * and the order in which the units finished.
   */
  async overlapping(shapes: [number, number, number][], cancel: number) {
    const { device } = await acquired;
    const kernel = await GemmKernel.create(device);
    const finished: number[] = [];
    const run = async ([m, k, n]: [number, number, number], seed: number, signal?: AbortSignal) => {
      const a = operands(m * k, seed);
      const b = operands(k * n, seed + 1);
      try {
        const { c } = await kernel.run(m, k, n, a, b, signal);
        finished.push(seed);
        return { maxRelativeError: checkProduct(c, a, b, m, k, n, 24), cancelled: false };
      } catch (err) {
        if (!(err instanceof UnitCancelledError)) throw err;
        return { maxRelativeError: null, cancelled: true };
      }
    };
    const controls = shapes.map(() => new AbortController());
    const units = shapes.map((shape, i) => run(shape, i, controls[i].signal));
    controls[cancel].abort();
    const results = await Promise.all(units);
    const after = await run(shapes[cancel], shapes.length);
    kernel.destroy();
    return { results, finished, after };
  },

  /**
   * The miner's worker, as the page drives it: what precisions it says it runs, what an f16 unit (2x2 halves of 1)
   * comes back as (its C, or the error), and an f32 unit after it.
   */
  async workerPrecisions() {
    const client = new GpuClient(() => undefined);
    try {
      const description = await client.init();
      const ones = () => new Uint16Array(4).fill(0x3c00);
      const f16 = await runGemm(client, 2, 2, 2, ones(), ones()).then(
        (run) => ({ c: [...run.c], error: '', code: '' }),
        (err: unknown) => ({ c: [], error: String(err), code: err instanceof CodedError ? err.code : '' }),
      );
      const f32 = await runGemm(client, 2, 2, 2, Float32Array.of(1, 2, 3, 4), Float32Array.of(1, 0, 0, 1));
      return { precisions: description.precisions, shaderF16: description.features.includes('shader-f16'), f16, f32: [...f32.c] };
    } finally {
      client.terminate();
    }
  },

  /** Stores a tuning record as written before kernel families existed, then asks for the stored tuning. */
  async storedAfterLegacyRecord() {
    const { device, adapter } = await acquired;
    const key = adapterKey(adapter, navigator.userAgent);
    const db = await openDB('ergon-gpu', 1, { upgrade: (upgrading) => void upgrading.createObjectStore('tuning') });
    const legacy = { wgX: 16, wgY: 16, tm: 4, tn: 4, tileK: 16 };
    await db.put('tuning', { adapterKey: key, config: legacy, gflops: 1, tunedAtMs: Date.now(), trials: [] }, key);
    db.close();
    return (await storedTuning(key, device)) ?? null;
  },

  async tune() {
    const { device, adapter } = await acquired;
    const key = adapterKey(adapter, navigator.userAgent);
    const before = await storedTuning(key, device);
    const started = performance.now();
    const record = await tune(device, key);
    const seconds = (performance.now() - started) / 1000;
    const after = await storedTuning(key, device);
    return { before: before ?? null, record, seconds, storedConfig: after ? configName(after.config) : null, chosen: configName(record.config) };
  },
};

declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
