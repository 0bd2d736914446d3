// onnxruntime-web sessions kept warm across units, one per model, each on the engine measured fastest for it on this
// device (engine-choice.ts): the WebGPU EP where the browser has an adapter, else the WASM EP.
import { openDB } from 'idb';
import type * as Ort from 'onnxruntime-web';
import type { Engine } from '../../protocol/messages.ts';
import { chooseEngine, choiceKey, type ChoiceStore } from './engine-choice.ts';
import { loadModel } from './model-cache.ts';

export type OnnxEngine = Engine;

export interface WarmSession {
  session: Ort.InferenceSession;
  engine: OnnxEngine;
}

type Feeds = Record<string, Ort.Tensor>;

const sessions = new Map<string, Promise<WarmSession>>();
let runtime: Promise<{ ort: typeof Ort; engines: Engine[]; adapter: string }> | undefined;

/**
 * onnxruntime-web and the engines it may use here. With a WebGPU adapter, its WebGPU build, which has both EPs
 * (27 MB); without one, the WASM-only build (14 MB): a browser that cannot use WebGPU never downloads it.
 */
export function onnxRuntime(): Promise<{ ort: typeof Ort; engines: Engine[]; adapter: string }> {
  runtime ??= (async () => {
    const adapter = typeof navigator !== 'undefined' && 'gpu' in navigator ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    const ort: typeof Ort = adapter ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
    ort.env.logLevel = 'error';
    const name = adapter ? [adapter.info.vendor, adapter.info.architecture, adapter.info.device, adapter.info.description].join('/') : 'no-webgpu';
    // WASM first: it is measured quickly, and a WebGPU EP far slower than it is then cut short (engine-choice.ts).
    return { ort, engines: adapter ? ['wasm', 'webgpu'] : ['wasm'], adapter: name };
  })();
  return runtime;
}

/**
 * The warm session for a model, made on first use (the model from its cache or the coordinator) on the engine
 * that runs `feeds` (the first unit's inputs) faster.
 */
export function sessionFor(sha256: string, feeds: Feeds): Promise<WarmSession> {
  let session = sessions.get(sha256);
  if (!session) {
    session = (async () => {
      const { ort, engines, adapter } = await onnxRuntime();
      const { bytes } = await loadModel(sha256);
      const model = new Uint8Array(bytes);
      const choice = await chooseEngine(choiceKey(sha256, adapter), engines, {
        open: (engine) => ort.InferenceSession.create(model, { executionProviders: [engine], graphOptimizationLevel: 'all' }),
        async time(candidate) {
          const started = performance.now();
          const outputs = await candidate.run(feeds);
          const seconds = (performance.now() - started) / 1000;
          for (const output of Object.values(outputs)) output.dispose();
          return seconds;
        },
        close: (candidate) => candidate.release(),
      }, choiceStore);
      console.info(`onnx model ${sha256.slice(0, 12)}: ${choice.engine}`, choice.remembered ? '(remembered)' : choice.measured);
      return { session: choice.session, engine: choice.engine };
    })();
    // A failed load is not kept: the next unit tries again.
    session.catch(() => sessions.delete(sha256));
    sessions.set(sha256, session);
  }
  return session;
}

/** Engine choices in IndexedDB, per model and adapter. */
const choiceStore: ChoiceStore = {
  async get(key) {
    const value: unknown = await (await choicesDb()).get('choices', key);
    return value === 'webgpu' || value === 'wasm' ? value : undefined;
  },
  async put(key, engine) {
    await (await choicesDb()).put('choices', engine, key);
  },
};

let db: ReturnType<typeof openDB> | undefined;
function choicesDb(): ReturnType<typeof openDB> {
  db ??= openDB('ergon-onnx-engines', 1, { upgrade: (d) => void d.createObjectStore('choices') });
  return db;
}
