// "ours": the product's GEMM kernel, src/miner/gpu/gemm.ts, with the config the miner's autotuner picks.
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import type { KernelConfig } from '../../src/miner/gpu/kernel-config.ts';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/** The kernel config to run with: the autotuner's pick, or undefined for GemmKernel.create(device)'s default. */
export interface OursConfig {
  value: KernelConfig | undefined;
  source: 'autotune' | 'default';
  tuning?: string;
}

/** One kernel for every shape, as the miner keeps one: it compiles its pipelines once and pools its buffers. */
let shared: { device: GPUDevice; config: OursConfig; kernel: Promise<GemmKernel> } | undefined;

function kernelFor(device: GPUDevice, config: OursConfig): Promise<GemmKernel> {
  if (!shared || shared.device !== device || shared.config !== config) {
    shared = { device, config, kernel: GemmKernel.create(device, config.value) };
  }
  return shared.kernel;
}

/**
 * Operands uploaded once, then per run compute() and readBack(). `seconds` is submit to completion, as TF.js and
 * ORT are timed; the GPU clock's figure (timestamp queries) is recorded beside it where the adapter has them.
 */
export async function oursRunner(device: GPUDevice, ops: Operands, config: OursConfig): Promise<Runner> {
  const kernel = await kernelFor(device, config);
  const { m, k, n } = ops.shape;
  const timestamps = device.features.has('timestamp-query');
  let last: Float32Array | undefined;
  kernel.upload(m, k, n, ops.a, ops.b);
  await device.queue.onSubmittedWorkDone();
  return {
    info: {
      timing:
        'GemmKernel.upload() once, then per run compute(): seconds = its submitSeconds (sum over its dispatches of submit -> onSubmittedWorkDone, '
        + 'operands and C resident on the GPU); gpuClockSeconds = its gpuSeconds (the compute passes on the GPU\'s clock, timestamp queries)'
        + `${timestamps ? '' : ' (absent: this adapter has no timestamp-query)'}; wallSeconds = compute() + readBack() as seen from JavaScript, `
        + 'including the gaps between dispatches and the copy of C back.',
      details: { api: 'upload/compute/readBack', config: JSON.stringify(kernel.config), configSource: config.source, timestampQuery: timestamps },
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
