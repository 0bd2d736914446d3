// The miner side of a kind of work: what the GPU worker calls to run a leased unit on the engine at hand.
import type { CpuGemm } from '../cpu/cpu-gemm.ts';
import type { GemmKernel } from '../gpu/gemm.ts';
import type { OperandRef, OperandSource } from '../operand-feed.ts';
import type { Backend, RanOn, WorkerTensor } from '../worker-messages.ts';

/** The worker's GPU engine: its device and the kernels made for it. */
export interface GpuEngine {
  device: GPUDevice;
  gemm: GemmKernel;
}

/** What a kind runs on: the GPU (retried once on a fresh device if the device is lost), or the CPU fallback. */
export interface Engines {
  backend: Backend;
  onGpu<T>(run: (gpu: GpuEngine) => Promise<T>): Promise<T>;
  cpu(): Promise<{ gemm: CpuGemm }>;
}

/** A lease's payload as it reaches the worker: operand tensors by name and scalar parameters. */
export interface UnitPayload {
  operands: Readonly<Record<string, WorkerTensor>>;
  params: Readonly<Record<string, string | number | boolean>>;
}

/** A lease's payload as the page hands it over: some operands may be named by hash, for the worker to fetch. */
export interface LeasedPayload extends UnitPayload {
  refs?: Readonly<Record<string, OperandRef>>;
  source?: OperandSource;
}

export interface Execution {
  output: WorkerTensor;
  /** Compute time on the GPU's clock where the adapter has timestamp queries, else submitSeconds. */
  gpuSeconds: number;
  /** Compute time from submit to completion as JavaScript sees it. */
  submitSeconds: number;
  dispatches: number;
  /** For a kind that picks its engine per model: the engine this unit ran on, which its result names. */
  ranOn?: RanOn;
}

export interface MinerKind {
  /** The name the coordinator's registry gives the kind (src/work/registry.ts). */
  readonly name: string;
  /** Runs one unit; throws a CodedError (e.g. shape-mismatch, unsupported-precision) when it cannot. */
  execute(payload: UnitPayload, engines: Engines, signal: AbortSignal): Promise<Execution>;
}
