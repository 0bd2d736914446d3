// The GPU worker: owns the WebGPU device, tunes the kernel once per adapter, and runs units one at a time.
import { acquireDevice, NoWebGpuError } from './gpu/device.ts';
import { adapterKey, storedTuning, tune } from './gpu/autotune.ts';
import { GemmKernel } from './gpu/gemm.ts';
import { configName } from './gpu/kernel-config.ts';
import type { FromWorker, GpuDescription, ToWorker } from './worker-messages.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

interface Gpu {
  description: GpuDescription;
  gemm: GemmKernel;
}
let gpu: Promise<Gpu> | undefined;
/** Units run strictly one after another: they share the kernel's pooled buffers. */
let queue: Promise<unknown> = Promise.resolve();

function post(message: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

async function startGpu(): Promise<Gpu> {
  const acquired = await acquireDevice();
  void acquired.device.lost.then((info) => {
    gpu = undefined; // the next unit acquires a fresh adapter and device
    post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
  });
  const key = adapterKey(acquired.adapter, navigator.userAgent);
  const started = performance.now();
  const stored = await storedTuning(key, acquired.device);
  const record = stored ?? (await tune(acquired.device, key));
  const gemm = await GemmKernel.create(acquired.device, record.config);
  return {
    gemm,
    description: {
      adapter: acquired.adapter,
      features: acquired.features,
      limits: acquired.limits,
      tuning: { config: configName(record.config), gflops: record.gflops, fresh: !stored, tuneSeconds: (performance.now() - started) / 1000 },
    },
  };
}

function ensureGpu(): Promise<Gpu> {
  gpu ??= startGpu();
  gpu.catch(() => {
    gpu = undefined;
  });
  return gpu;
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'init':
      ensureGpu().then(
        ({ description }) => post({ type: 'ready', ...description }),
        (err: unknown) => post({ type: 'init-failed', noWebGpu: err instanceof NoWebGpuError, message: (err as Error).message }),
      );
      return;
    case 'gemm':
      queue = queue.then(async () => {
        try {
          const { gemm } = await ensureGpu();
          const { m, k, n } = message;
          const run = await gemm.run(m, k, n, new Float32Array(message.a), new Float32Array(message.b));
          post({ type: 'gemm-done', id: message.id, c: run.c.buffer, gpuSeconds: run.gpuSeconds, dispatches: run.dispatches }, [run.c.buffer]);
        } catch (err) {
          post({ type: 'gemm-failed', id: message.id, message: (err as Error).message });
        }
      });
      return;
  }
};
