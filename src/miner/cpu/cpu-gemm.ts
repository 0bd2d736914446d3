// The CPU fallback for browsers without WebGPU: C = A · B on onnxruntime-web's WASM backend (MLAS, SIMD).
import type * as Ort from 'onnxruntime-web';
import { matMulModel } from './matmul-model.ts';

export interface CpuGemmRun {
  c: Float32Array<ArrayBuffer>;
  /** Wall time of the MatMul in the WASM engine, copies in and out included: the CPU's compute time. */
  computeSeconds: number;
}

/**
 * Threads MLAS may use. More than one needs SharedArrayBuffer, so a cross-origin isolated page; the rest of the
 * cores stay with the person, as a browser tab should leave them.
 */
function threadsFor(hardwareConcurrency: number, isolated: boolean): number {
  return isolated ? Math.max(1, Math.min(4, Math.floor(hardwareConcurrency / 2))) : 1;
}

export class CpuGemm {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    readonly threads: number,
  ) {}

  /** Loads the WASM engine (its .wasm is fetched from the built app on first use) and one session for all shapes. */
  static async create(): Promise<CpuGemm> {
    // Only a browser that falls back loads the engine: the WebGPU path never pays for its 14 MB.
    const ort = await import('onnxruntime-web/wasm');
    const threads = threadsFor(navigator.hardwareConcurrency || 1, globalThis.crossOriginIsolated === true);
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    const session = await ort.InferenceSession.create(matMulModel(), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return new CpuGemm(ort, session, threads);
  }

  /** A human label for the engine, shown where a GPU's name would be. */
  get description(): string {
    const version = this.ort.env.versions.web;
    return `onnxruntime-web${version ? ` ${version}` : ''} WASM (SIMD), ${this.threads} thread${this.threads === 1 ? '' : 's'}`;
  }

  async run(m: number, k: number, n: number, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>): Promise<CpuGemmRun> {
    if (a.length !== m * k || b.length !== k * n) throw new RangeError(`gemm: operands do not match ${m}x${k}x${n}`);
    const feeds = { A: new this.ort.Tensor('float32', a, [m, k]), B: new this.ort.Tensor('float32', b, [k, n]) };
    const started = performance.now();
    const { Y } = await this.session.run(feeds);
    const computeSeconds = Math.max(performance.now() - started, 0.001) / 1000;
    try {
      const data = Y.data;
      if (!(data instanceof Float32Array) || data.length !== m * n) throw new Error(`the WASM MatMul returned ${Y.type} of ${Y.dims.join('x')}, expected float32 ${m}x${n}`);
      return { c: new Float32Array(data), computeSeconds };
    } finally {
      Y.dispose();
    }
  }
}
