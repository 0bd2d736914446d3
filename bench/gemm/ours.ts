// "ours": the product's GEMM kernel, src/miner/gpu/gemm.ts, with the config the miner's autotuner picks.
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import type { KernelConfig, Precision } from '../../src/miner/gpu/kernel-config.ts';
import { toHalves } from '../../src/work/gemm/halves.ts';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/** The kernel config to run with: the autotuner's pick, or undefined for GemmKernel.create(device)'s default. */
export interface OursConfig {
  value: KernelConfig | undefined;
  source: 'autotune' | 'default';
  tuning?: string;
}

/**
 * One kernel for every shape per precision, as the miner keeps one: it compiles its pipelines once and pools its
 * buffers. Two, because each runner keeps its operands resident and the bench interleaves runners.
 */
const shared = new Map<Precision, { device: GPUDevice; config: OursConfig; kernel: Promise<GemmKernel> }>();

function kernelFor(device: GPUDevice, config: OursConfig, precision: Precision): Promise<GemmKernel> {
  let entry = shared.get(precision);
  if (!entry || entry.device !== device || entry.config !== config) {
    entry = { device, config, kernel: GemmKernel.create(device, config.value) };
    shared.set(precision, entry);
  }
  return entry.kernel;
}

/**
 * Operands uploaded once, then per run compute() and readBack(). `seconds` is submit to completion, as TF.js and
 * ORT are timed; the GPU clock's figure (timestamp queries) is recorded beside it where the adapter has them.
 */
export function oursRunner(device: GPUDevice, ops: Operands, config: OursConfig): Promise<Runner> {
  return residentRunner(device, ops, config, 'f32');
}

/**
 * The same on f16 operands: A and B rounded to halves (not timed), multiplied and summed in f32. Its error column is
 * against the f32 operands' product, so it shows what the rounding costs (~1e-3), not the kernel's own error.
 */
export function oursF16Runner(device: GPUDevice, ops: Operands, config: OursConfig): Promise<Runner> {
  if (!device.features.has('shader-f16')) throw new Error('this adapter has no shader-f16');
  return residentRunner(device, ops, config, 'f16');
}

async function residentRunner(device: GPUDevice, ops: Operands, config: OursConfig, precision: Precision): Promise<Runner> {
  const kernel = await kernelFor(device, config, precision);
  const { m, k, n } = ops.shape;
  const timestamps = device.features.has('timestamp-query');
  let last: Float32Array | undefined;
  if (precision === 'f16') kernel.upload(m, k, n, toHalves(ops.a), toHalves(ops.b));
  else kernel.upload(m, k, n, ops.a, ops.b);
  await device.queue.onSubmittedWorkDone();
  return {
    info: {
      timing:
        'GemmKernel.upload() once, then per run compute(): seconds = its submitSeconds (sum over its dispatches of submit -> onSubmittedWorkDone, '
        + 'operands and C resident on the GPU); gpuClockSeconds = its gpuSeconds (the compute passes on the GPU\'s clock, timestamp queries)'
        + `${timestamps ? '' : ' (absent: this adapter has no timestamp-query)'}; wallSeconds = compute() + readBack() as seen from JavaScript, `
        + 'including the gaps between dispatches and the copy of C back.',
      details: { api: 'upload/compute/readBack', precision, config: JSON.stringify(kernel.config), configSource: config.source, timestampQuery: timestamps },
    },
    async time() {
      const started = nowSeconds();
      const run = await kernel.compute();
      last = await kernel.readBack();
      return {
        seconds: run.submitSeconds,
        wallSeconds: nowSeconds() - started,
        dispatches: run.dispatches,
        ...(timestamps ? { gpuClockSeconds: run.gpuSeconds } : {}),
      };
    },
    async product() {
      last ??= await kernel.readBack();
      return last;
    },
    // The kernel and its pooled buffers stay for the next shape.
    async release() {},
  };
}
