// Typed messages between the page and the GPU worker: the page never touches WebGPU itself.
import type { AdapterInfo } from '../protocol/messages.ts';

export type ToWorker =
  | { type: 'init' }
  | { type: 'gemm'; id: number; m: number; k: number; n: number; a: ArrayBuffer; b: ArrayBuffer };

export interface GpuDescription {
  adapter: AdapterInfo;
  features: string[];
  limits: Record<string, number>;
}

export type FromWorker =
  | ({ type: 'ready' } & GpuDescription)
  | { type: 'init-failed'; noWebGpu: boolean; message: string }
  | { type: 'gemm-done'; id: number; c: ArrayBuffer; gpuSeconds: number }
  | { type: 'gemm-failed'; id: number; message: string }
  | { type: 'device-lost'; message: string };
