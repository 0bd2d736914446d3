// "ort-webgpu" and "ort-wasm": onnxruntime-web running a one-node MatMul model on its WebGPU and WASM EPs.
import type * as Ort from 'onnxruntime-web';
import { matMulModel } from '../../src/miner/cpu/matmul-model.ts';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/**
 * Served by bench/gemm/static-server.ts from node_modules/onnxruntime-web/dist. Each entry fetches its own
 * .wasm from the same folder: the WebGPU bundle the asyncify build, the WASM entry the plain threaded one.
 */
const ORT_WEBGPU_MODULE = '/vendor/ort/ort.webgpu.bundle.min.mjs';
const ORT_WASM_MODULE = '/vendor/ort/ort.wasm.min.mjs';

type OrtModule = typeof Ort;
const modules = new Map<string, Promise<OrtModule>>();

function loadOrt(path: string, configure: (ort: OrtModule) => void): Promise<OrtModule> {
  let loading = modules.get(path);
  if (!loading) {
    loading = (async () => {
      const url = new URL(path, location.href).href;
      const ort = (await import(/* @vite-ignore */ url)) as OrtModule;
      ort.env.logLevel = 'warning';
      configure(ort);
      return ort;
    })();
    modules.set(path, loading);
  }
  return loading;
}

/** Two threads need cross-origin isolation (COOP + COEP); without it ORT falls back to one. */
export function ortWasmThreads(): number {
  return crossOriginIsolated ? Math.max(1, navigator.hardwareConcurrency) : 1;
}

export async function ortWebGpuRunner(ops: Operands): Promise<Runner> {
  const ort = await loadOrt(ORT_WEBGPU_MODULE, () => {});
  const { m, k, n } = ops.shape;
  const session = await ort.InferenceSession.create(matMulModel(ops.shape), {
    executionProviders: ['webgpu'],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'all',
  });
  const device = await ort.env.webgpu.device;
  const upload = (values: Float32Array<ArrayBuffer>, dims: number[], label: string) => {
    const buffer = device.createBuffer({ label, size: values.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, values);
    return { buffer, tensor: ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims }) };
  };
  const a = upload(ops.a, [m, k], 'ort A');
  const b = upload(ops.b, [k, n], 'ort B');
  await device.queue.onSubmittedWorkDone();
  const feeds = { A: a.tensor, B: b.tensor };
  let last: Float32Array | undefined;
  let location = '';

  return {
    info: {
      timing:
        'seconds = await session.run() with A and B as GPU tensors (Tensor.fromGpuBuffer, uploaded once) and preferredOutputLocation "gpu-buffer", '
        + 'then device.queue.onSubmittedWorkDone() on ORT\'s device: session overhead plus GPU compute, Y left on the GPU; '
        + 'wallSeconds adds Y.getData() (read-back).',
      details: { entry: ORT_WEBGPU_MODULE, executionProvider: 'webgpu', ortVersion: ort.env.versions.web ?? 'unknown' },
    },
    async time() {
      const started = nowSeconds();
      const out = await session.run(feeds);
      await device.queue.onSubmittedWorkDone();
      const seconds = nowSeconds() - started;
      const y = out.Y;
      location = y.location;
      last = (await y.getData(true)) as Float32Array;
      y.dispose();
      if (location !== 'gpu-buffer') throw new Error(`ORT returned Y in ${location}, not on the GPU: the WebGPU EP did not run`);
      return { seconds, wallSeconds: nowSeconds() - started };
    },
    async product() {
      if (!last) throw new Error('ort-webgpu has not run yet');
      return last;
    },
    async release() {
      await session.release();
      a.tensor.dispose();
      b.tensor.dispose();
      a.buffer.destroy();
      b.buffer.destroy();
    },
  };
}

export async function ortWasmRunner(ops: Operands): Promise<Runner> {
  const threads = ortWasmThreads();
  const ort = await loadOrt(ORT_WASM_MODULE, (o) => {
    o.env.wasm.numThreads = threads;
  });
  const { m, k, n } = ops.shape;
  const session = await ort.InferenceSession.create(matMulModel(ops.shape), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const feeds = { A: new ort.Tensor('float32', ops.a, [m, k]), B: new ort.Tensor('float32', ops.b, [k, n]) };
  let last: Float32Array | undefined;

  return {
    info: {
      timing:
        'seconds = wallSeconds = await session.run() with CPU tensors: copy of A and B into the WASM heap, the MatMul (MLAS, SIMD) '
        + 'and the copy of Y out. No GPU.',
      details: {
        entry: ORT_WASM_MODULE,
        executionProvider: 'wasm',
        threads: Number(ort.env.wasm.numThreads ?? threads),
        crossOriginIsolated,
        ortVersion: ort.env.versions.web ?? 'unknown',
      },
    },
    async time() {
      const started = nowSeconds();
      const out = await session.run(feeds);
      const seconds = nowSeconds() - started;
      last = out.Y.data as Float32Array;
      return { seconds, wallSeconds: seconds };
    },
    async product() {
      if (!last) throw new Error('ort-wasm has not run yet');
      return last;
    },
    async release() {
      await session.release();
    },
  };
}
