// Typed messages between the page and the GPU worker: the page never touches WebGPU itself.
import type { AdapterInfo } from '../protocol/messages.ts';

export type ToWorker =
  | { type: 'init' }
  | { type: 'gemm'; id: number; m: number; k: number; n: number; a: ArrayBuffer; b: ArrayBuffer };

export interface KernelTuning {
  /** The config in use, e.g. wg16x16-t4x4-k16 */
  config: string;
  /** Its speed when tuned, GFLOP/s of GPU time */
  gflops: number;
  /** True when tuned now; false when read from IndexedDB */
  fresh: boolean;
  tuneSeconds: number;
}

export interface GpuDescription {
  adapter: AdapterInfo;
  features: string[];
  limits: Record<string, number>;
  tuning: KernelTuning;
}

export type FromWorker =
  | ({ type: 'ready' } & GpuDescription)
  | { type: 'init-failed'; noWebGpu: boolean; message: string }
  | { type: 'gemm-done'; id: number; c: ArrayBuffer; gpuSeconds: number; dispatches: number }
  | { type: 'gemm-failed'; id: number; message: string }
  | { type: 'device-lost'; message: string };
