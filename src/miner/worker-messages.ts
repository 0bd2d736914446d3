// Typed messages between the page and the GPU worker: the page never touches WebGPU itself.
import type { ProtocolError } from '../protocol/errors.ts';
import type { AdapterInfo, Engine, Precision } from '../protocol/messages.ts';
import type { Dtype } from '../protocol/tensor.ts';
import type { OperandRef, OperandSource } from './operand-feed.ts';

/** How much of the GPU the person lends: the worker enforces both limits before each unit. */
export interface Throttle {
  /** Largest share of wall time the GPU may be busy, 0.1 to 1. */
  duty: number;
  /** Most GPU seconds in any 60 s window, 1 to 60. */
  gpuSecondsPerMinute: number;
}

/**
 * What computes the units: the GPU through WebGPU, or, where a browser has no usable WebGPU and the person chose
 * it, the CPU through onnxruntime-web's WASM backend.
 */
export type Backend = 'webgpu' | 'wasm';

/** A tensor crossing to or from the worker: its bytes in an ArrayBuffer of its own, transferred, not copied. */
export interface WorkerTensor {
  dtype: Dtype;
  shape: number[];
  data: ArrayBuffer;
  /** The sha256 of `data` where the lease named the operand by hash: the GPU may keep it resident under that name. */
  sha256?: string;
}

export type ToWorker =
  | { type: 'init'; backend: Backend }
  | { type: 'throttle'; throttle: Throttle }
  /**
   * A leased unit of a kind the description lists, with its lease's operands and parameters; the operands it names
   * by hash (`refs`) the worker fetches from `source` unless it holds them.
   */
  | {
    type: 'unit'; id: number; kind: string; operands: Record<string, WorkerTensor>; params: Record<string, string | number | boolean>;
    refs?: Record<string, OperandRef>; source?: OperandSource;
  }
  /**
   * How many bytes of operands to keep: on the GPU and in memory while units use them, and across visits in Cache
   * Storage. 0 keeps nothing: every unit fetches its operands (caching off).
   */
  | { type: 'operand-cache'; budgetBytes: number }
  /** The person cleared the kept operands: forget the copies in memory too. */
  | { type: 'clear-operands' }
  /**
   * Diagnostics (and the recovery test): calls `device.destroy()` on the worker's live device, a real device loss.
   * The worker then recovers exactly as from a driver reset: a fresh adapter and device, and the unit in hand rerun.
   */
  | { type: 'lose-device' }
  /** Drops the units sent that have not started computing (each fails with code `cancelled`); Stop sends it. */
  | { type: 'cancel-queued' };

export interface KernelTuning {
  /** The config in use, e.g. wg16x16-t4x4-k16; for the WASM backend, the engine's MatMul */
  config: string;
  /** Its speed when tuned, GFLOP/s of GPU time */
  gflops: number;
  /** True when tuned now; false when read from IndexedDB */
  fresh: boolean;
  tuneSeconds: number;
}

export interface GpuDescription {
  backend: Backend;
  /** For the WASM backend: vendor 'cpu', architecture 'wasm', the engine and its threads as the description. */
  adapter: AdapterInfo;
  features: string[];
  limits: Record<string, number>;
  /** The GPU kernel's tuning; null for the WASM backend, which runs the engine's own MatMul. */
  tuning: KernelTuning | null;
  /** The kinds of work it runs (src/miner/kinds). */
  kinds: string[];
  /** Operand precisions it runs: f16 too on a WebGPU device with shader-f16. */
  precisions: Precision[];
}

/** One unit's run in the worker, timed on the wall clock (Date.now) so the page can line it up with its own. */
export interface UnitTiming {
  /** Compute time on the GPU's clock where the adapter has timestamp queries, else submitSeconds. */
  gpuSeconds: number;
  /** Compute time from submit to completion as JavaScript sees it. */
  submitSeconds: number;
  dispatches: number;
  /** How long the worker held the unit back to honour the throttle before running it. */
  waitedMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  /** How long the throttle wants the GPU idle before the next unit may start. */
  restMs: number;
  /** The engine chosen for the unit's model, when its kind chooses one per model (onnx). */
  ranOn?: RanOn;
}

/** The engine a unit ran on, and the model it was chosen for. */
export interface RanOn {
  engine: Engine;
  model: string;
}

export type FromWorker =
  | ({ type: 'ready' } & GpuDescription)
  | { type: 'init-failed'; noWebGpu: boolean; error: ProtocolError }
  | ({ type: 'unit-done'; id: number; output: WorkerTensor } & UnitTiming)
  /** Code `cancelled`: dropped by cancel-queued before it ran, not a failure. */
  | { type: 'unit-failed'; id: number; error: ProtocolError }
  | { type: 'device-lost'; message: string }
  /** A fresh device after a loss, ready for work. */
  | ({ type: 'device-restored' } & GpuDescription);
