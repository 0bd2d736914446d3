// onnxruntime-web sessions kept warm across units, one per model. The WASM execution provider: on SwiftShader (a CPU
// rasteriser) the WebGPU EP has nothing to gain; measuring both per model on each device is not done yet.
import type * as Ort from 'onnxruntime-web';
import { loadModel } from './model-cache.ts';

export type OnnxEngine = 'wasm';

export interface WarmSession {
  ort: typeof Ort;
  session: Ort.InferenceSession;
  engine: OnnxEngine;
}

const sessions = new Map<string, Promise<WarmSession>>();

/** The warm session for a model, made on first use (the model from its cache or the coordinator). */
export function sessionFor(sha256: string): Promise<WarmSession> {
  let session = sessions.get(sha256);
  if (!session) {
    session = (async () => {
      const ort = await import('onnxruntime-web/wasm');
      ort.env.logLevel = 'error';
      const { bytes } = await loadModel(sha256);
      const created = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      return { ort, session: created, engine: 'wasm' as const };
    })();
    // A failed load is not kept: the next unit tries again.
    session.catch(() => sessions.delete(sha256));
    sessions.set(sha256, session);
  }
  return session;
}
