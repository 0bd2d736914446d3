// Exposes the miner's GPU code to Playwright: run a kernel config on seeded operands and check it in f64.
import { acquireDevice } from '../../../src/miner/gpu/device.ts';
import { adapterKey, storedTuning, tune } from '../../../src/miner/gpu/autotune.ts';
import { GemmKernel } from '../../../src/miner/gpu/gemm.ts';
import { CANDIDATES, configName, type KernelConfig } from '../../../src/miner/gpu/kernel-config.ts';
import { mulberry32 } from '../../helpers/random.ts';

const acquired = acquireDevice();
const kernels = new Map<number, GemmKernel>();

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
  configs: (): string[] => CANDIDATES.map(configName),

  /** Runs config `configIndex` (its kernel compiled once per page and kept, as the miner keeps it). */
  async gemm(configIndex: number, m: number, k: number, n: number, seed: number, runs = 1) {
    const { device } = await acquired;
    const config: KernelConfig = CANDIDATES[configIndex];
    let kernel = kernels.get(configIndex);
    if (!kernel) {
      kernel = await GemmKernel.create(device, config);
      kernels.set(configIndex, kernel);
    }
    const a = operands(m * k, seed);
    const b = operands(k * n, seed + 1);
    let last = await kernel.run(m, k, n, a, b);
    for (let i = 1; i < runs; i++) last = await kernel.run(m, k, n, a, b);
    return { config: configName(config), variant: kernel.variant, maxRelativeError: checkProduct(last.c, a, b, m, k, n, 24), dispatches: last.dispatches, gpuSeconds: last.gpuSeconds };
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
