// "tfjs": TensorFlow.js's WebGPU backend (tf.matMul), loaded from node_modules' prebuilt bundles.
import type * as TF from '@tensorflow/tfjs';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/** Served by bench/gemm/static-server.ts from node_modules/@tensorflow/{tfjs,tfjs-backend-webgpu}/dist. */
const TFJS_SCRIPTS = ['/vendor/tfjs/tf.min.js', '/vendor/tfjs-backend-webgpu/tf-backend-webgpu.min.js'];

const DEFERRED_SUBMIT_BATCH = 1;

let loaded: Promise<{ tf: typeof TF; backend: WebGPUBackend }> | undefined;

function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}

function loadTfjs(): Promise<{ tf: typeof TF; backend: WebGPUBackend }> {
  loaded ??= (async () => {
    for (const src of TFJS_SCRIPTS) await loadScript(src);
    const tf = (globalThis as unknown as { tf?: typeof TF }).tf;
    if (!tf) throw new Error('tf.min.js loaded but defined no global tf');
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not initialise its webgpu backend');
    // TF.js keeps a compute pass open across up to 15 dispatches before it submits; with 1 it ends the pass and
    // submits after every dispatch, so onSubmittedWorkDone() waits for the matMul itself. A lone matMul gains
    // nothing from batching, so this costs TF.js no speed.
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', DEFERRED_SUBMIT_BATCH);
    await tf.ready();
    const backend = tf.backend() as unknown as WebGPUBackend;
    if (tf.getBackend() !== 'webgpu' || !backend.device) throw new Error(`TF.js runs on ${tf.getBackend()}, not webgpu`);
    return { tf, backend };
  })();
  return loaded;
}

export async function tfjsRunner(ops: Operands): Promise<Runner> {
  const { tf, backend } = await loadTfjs();
  const { m, k, n } = ops.shape;
  const a = tf.tensor2d(ops.a, [m, k], 'float32');
  const b = tf.tensor2d(ops.b, [k, n], 'float32');
  // Upload the operands now, so that no timed run pays for it.
  const first = tf.matMul(a, b);
  await first.data();
  let out: TF.Tensor = first;
  let last: Float32Array | undefined;

  return {
    info: {
      timing:
        'seconds = tf.matMul(a, b) on tensors already on the GPU (WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE 1: submitted at once), then device.queue.onSubmittedWorkDone(): '
        + 'op dispatch in JS plus GPU compute, C left on the GPU; wallSeconds adds await c.data() (read-back of C).',
      details: {
        tfjs: tf.version.tfjs,
        backend: tf.getBackend(),
        deferredSubmitBatch: Number(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')),
      },
    },
    async time() {
      out.dispose();
      const started = nowSeconds();
      out = tf.matMul(a, b);
      await backend.device.queue.onSubmittedWorkDone();
      const seconds = nowSeconds() - started;
      last = (await out.data()) as Float32Array;
      return { seconds, wallSeconds: nowSeconds() - started };
    },
    async product() {
      last ??= (await out.data()) as Float32Array;
      return last;
    },
    async release() {
      out.dispose();
      a.dispose();
      b.dispose();
    },
  };
}
