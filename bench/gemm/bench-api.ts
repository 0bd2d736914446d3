// The contract between the Node driver (bench/gemm.ts) and the bench page: names, shapes and results.

/** ours-f16: our kernel on f16 operands (halves, summed in f32), where the adapter has shader-f16. */
export const IMPLS = ['ours', 'ours-f16', 'naive', 'tfjs', 'ort-webgpu', 'ort-wasm'] as const;
export type ImplName = (typeof IMPLS)[number];

export const isImplName = (x: string): x is ImplName => (IMPLS as readonly string[]).includes(x);

/** C (m x n) = A (m x k) · B (k x n); written MxKxN, or N for a square N x N x N. */
export interface Shape {
  m: number;
  k: number;
  n: number;
}

export const shapeLabel = (s: Shape): string => (s.m === s.k && s.k === s.n ? `${s.m}` : `${s.m}x${s.k}x${s.n}`);
export const shapeFlops = (s: Shape): number => 2 * s.m * s.k * s.n;

/** One timed run of one implementation. */
export interface RunTiming {
  /** The headline time: compute with operands already resident where the implementation keeps them. */
  seconds: number;
  /** The same call including read-back of C to JavaScript (and, for ours via run(), upload too). */
  wallSeconds: number;
  /** Command buffers the run was split into, where the implementation says. */
  dispatches?: number;
  /** ours: the compute passes' time on the GPU's clock (timestamp queries), where the adapter has them. */
  gpuClockSeconds?: number;
}

export interface CheckResult {
  /** max |C - ref| / max |ref| over the checked elements. */
  maxRelError: number;
  maxAbsError: number;
  /** How many elements of C were compared with the f64 reference, and how they were chosen. */
  checkedElements: number;
  reference: 'full' | 'sampled-rows';
  checkedRows: number;
}

export interface ImplInfo {
  /** Exactly what `seconds` and `wallSeconds` include, for the JSON and the printed notes. */
  timing: string;
  /** Anything else worth recording: backend names, thread counts, kernel config. */
  details: Record<string, string | number | boolean>;
}

export interface PageOptions {
  /** Run "ours" with the config the product's autotuner picks on this adapter, when the autotuner exists. */
  tune: boolean;
}

export interface Environment {
  userAgent: string;
  /** The config "ours" runs with, and how it was chosen. */
  ours: { config: string; source: 'autotune' | 'default'; tuning?: string };
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  adapter: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    isFallbackAdapter: boolean;
    features: string[];
    limits: Record<string, number>;
  };
}

export interface VerificationCost {
  /** Median seconds of freivalds() on the whole product, in the page's V8. */
  freivaldsSeconds: number;
  runs: number[];
  accepted: boolean;
}

/** serial: verdict before the next lease; pipelined: next lease and previous verdict while this unit computes. */
export type EndToEndMode = 'serial' | 'pipelined';

export interface EndToEndSpec {
  /** Square job edge: the job is size x size x size, split into the coordinator's unit tiles. */
  size: number;
  seed: number;
  modes: EndToEndMode[];
}

export interface EndToEndUnit {
  unitId: string;
  rows: number;
  depth: number;
  cols: number;
  /** Whole path, lease encoding to verdict. */
  wallSeconds: number;
  /** The kernel's compute time reported by the worker: on the GPU's clock where timestamp queries are present. */
  gpuSeconds: number;
  /** The same compute, submit to completion as JavaScript sees it. */
  submitSeconds: number;
  /** Page -> worker -> page round trip of GpuClient.gemm (copies, upload, compute, read-back). */
  workerSeconds: number;
  leaseBytes: number;
  resultBytes: number;
  /** Coordinator side: encode + frame the lease, and reassemble + parse + verify the result. */
  coordinatorSeconds: number;
  /** Miner side, outside the worker: reassemble + parse the lease, encode + frame the result. */
  minerSeconds: number;
  freivaldsSeconds: number;
  accepted: boolean;
}

export interface EndToEndResult {
  mode: EndToEndMode;
  size: number;
  unitTile: number;
  ops: number;
  wallSeconds: number;
  gpuSeconds: number;
  submitSeconds: number;
  freivaldsSeconds: number;
  /** ops / wall: what the miner earns for. */
  miningGflops: number;
  /** ops / sum of gpuSeconds of the same units: the raw kernel rate. */
  kernelGflops: number;
  miningOverKernel: number;
  /** The same ratio against the submit-to-completion time, as the kernel table times ours and its peers. */
  miningOverSubmit: number;
  freivaldsOverCompute: number;
  allAccepted: boolean;
  /** Worst max relative error of any unit's tile against the f64 reference. */
  maxRelError: number;
  units: EndToEndUnit[];
  /** The worker's own description of its GPU and kernel (JSON of GpuClient.init()'s answer). */
  worker: string;
}

/** What the page puts on window for the driver to call through page.evaluate. */
export interface BenchPage {
  environment(options: PageOptions): Promise<Environment>;
  /** Makes operands for a shape (seeded) and readies one implementation: compile, upload, session. */
  prepare(impl: ImplName, shape: Shape, seed: number): Promise<ImplInfo>;
  time(impl: ImplName): Promise<RunTiming>;
  check(impl: ImplName): Promise<CheckResult>;
  /** Freivalds on the last product of `impl` (A, B, C of the prepared shape). */
  verificationCost(impl: ImplName, reps: number): Promise<VerificationCost>;
  release(impl: ImplName): Promise<void>;
  endToEnd(spec: EndToEndSpec): Promise<EndToEndResult[]>;
}

declare global {
  interface Window {
    ergonBench?: BenchPage;
  }
}
