// The GPU worker: owns the WebGPU device and runs kernels for the page, one unit at a time.
import { acquireDevice, NoWebGpuError, type AcquiredDevice } from './gpu/device.ts';
import { GemmKernel } from './gpu/gemm.ts';
import type { FromWorker, ToWorker } from './worker-messages.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
let gpu: Promise<{ acquired: AcquiredDevice; gemm: GemmKernel }> | undefined;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

function ensureDevice(): Promise<{ acquired: AcquiredDevice; gemm: GemmKernel }> {
  gpu ??= (async () => {
    const acquired = await acquireDevice();
    void acquired.device.lost.then((info) => {
      gpu = undefined; // the next unit acquires a fresh adapter and device
      post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
    });
    return { acquired, gemm: await GemmKernel.create(acquired.device) };
  })();
  gpu.catch(() => {
    gpu = undefined;
  });
  return gpu;
}

scope.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'init': {
      try {
        const { acquired } = await ensureDevice();
        post({ type: 'ready', adapter: acquired.adapter, features: acquired.features, limits: acquired.limits });
      } catch (err) {
        post({ type: 'init-failed', noWebGpu: err instanceof NoWebGpuError, message: (err as Error).message });
      }
      return;
    }
    case 'gemm': {
      try {
        const { gemm } = await ensureDevice();
        const { m, k, n } = message;
        const run = await gemm.run(m, k, n, new Float32Array(message.a), new Float32Array(message.b));
        post({ type: 'gemm-done', id: message.id, c: run.c.buffer, gpuSeconds: run.gpuSeconds }, [run.c.buffer]);
      } catch (err) {
        post({ type: 'gemm-failed', id: message.id, message: (err as Error).message });
      }
      return;
    }
  }
};
