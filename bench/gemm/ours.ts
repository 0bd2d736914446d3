// "ours": the product's GEMM kernel, called through src/miner/gpu/gemm.ts exactly as the miner's worker does.
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/**
 * The resident-buffer API the kernel may offer beside run(): upload once, compute many times, read back.
 * Detected at run time so that the bench keeps working while that API settles; run() is the fallback.
 */
interface ResidentGemm {
  upload(m: number, k: number, n: number, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>): void;
  compute(): Promise<{ gpuSeconds: number; dispatches?: number }>;
  readBack(): Promise<Float32Array<ArrayBuffer>>;
}

function residentApi(kernel: GemmKernel): ResidentGemm | undefined {
  const candidate = kernel as unknown as Partial<ResidentGemm>;
  const { upload, compute, readBack } = candidate;
  if (typeof upload !== 'function' || typeof compute !== 'function' || typeof readBack !== 'function') {
    return undefined;
  }
  return candidate as ResidentGemm;
}

/** The kernel config to run with: the autotuner's pick, or undefined for GemmKernel.create(device)'s default. */
export interface OursConfig {
  value: unknown;
  source: 'autotune' | 'default';
  tuning?: string;
}

function configLabel(kernel: GemmKernel): string {
  const config = (kernel as unknown as { config?: unknown }).config;
  return config === undefined ? 'default' : JSON.stringify(config);
}

/** create(device, config) where the kernel takes a config; a create(device) that does not ignores it. */
const createWithConfig = GemmKernel.create as (device: GPUDevice, config?: unknown) => Promise<GemmKernel>;

/** One kernel for every shape: its pipeline takes seconds to compile on SwiftShader, and it pools its buffers. */
let shared: { device: GPUDevice; config: OursConfig; kernel: Promise<GemmKernel> } | undefined;

function kernelFor(device: GPUDevice, config: OursConfig): Promise<GemmKernel> {
  if (!shared || shared.device !== device || shared.config !== config) {
    const kernel = config.value === undefined ? GemmKernel.create(device) : createWithConfig(device, config.value);
    shared = { device, config, kernel };
  }
  return shared.kernel;
}

export async function oursRunner(device: GPUDevice, ops: Operands, config: OursConfig): Promise<Runner> {
  const kernel = await kernelFor(device, config);
  const { m, k, n } = ops.shape;
  const resident = residentApi(kernel);
  let last: Float32Array | undefined;

  if (resident) {
    resident.upload(m, k, n, ops.a, ops.b);
    await device.queue.onSubmittedWorkDone();
    return {
      info: {
        timing:
          'GemmKernel.upload() once, then per run compute(): seconds = its gpuSeconds (sum over its dispatches of submit -> onSubmittedWorkDone, '
          + 'operands and C resident on the GPU); wallSeconds = compute() + readBack() as seen from JavaScript, including the gaps between dispatches and the copy of C back.',
        details: { api: 'upload/compute/readBack', config: configLabel(kernel), configSource: config.source },
      },
      async time() {
        const started = nowSeconds();
        const run = await resident.compute();
        last = await resident.readBack();
        return { seconds: run.gpuSeconds, wallSeconds: nowSeconds() - started, dispatches: run.dispatches ?? 1 };
      },
      async product() {
        last ??= await resident.readBack();
        return last;
      },
      // The kernel and its pooled buffers stay for the next shape; destroy() would free its parameters too.
      async release() {},
    };
  }

  return {
    info: {
      timing:
        'GemmKernel.run() per run: seconds = its gpuSeconds (submit -> onSubmittedWorkDone around the dispatch, operands already uploaded); '
        + 'wallSeconds = the whole run() call: buffer set-up, upload of A and B, compute and read-back of C.',
      details: { api: 'run', config: configLabel(kernel), configSource: config.source },
    },
    async time() {
      const started = nowSeconds();
      const run = await kernel.run(m, k, n, ops.a, ops.b);
      last = run.c;
      return { seconds: run.gpuSeconds, wallSeconds: nowSeconds() - started };
    },
    async product() {
      last ??= (await kernel.run(m, k, n, ops.a, ops.b)).c;
      return last;
    },
    async release() {},
  };
}
