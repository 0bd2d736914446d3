// What the coordinator knows of a model it holds (by the sha256 of its bytes), and the catalog a kind reads it from.
// Pure: the coordinator fills the catalog (inspecting models with onnxruntime-node); kinds only read it.

/** A graph input or output: name, element type and shape, symbolic dimensions as their names. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: (number | string)[];
}

/**
 * Largest difference allowed between a miner's output and the coordinator's re-run, per element:
 * |Δ| <= abs + rel * (|reference| + the reference output's RMS) (tolerance.ts).
 */
export interface Tolerance {
  abs: number;
  rel: number;
}

export interface ModelInfo {
  sha256: string;
  byteLength: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The graph's op types, sorted. */
  opTypes: string[];
  /** Bounds every element of an output must lie in (a Sigmoid's or Softmax's [0, 1]), by output name. */
  outputRanges: Record<string, [number, number]>;
  tolerance: Tolerance;
}

/** One inference of a model on inputs of given per-sample shapes, as measured: exact ops and the outputs' shapes. */
export interface ShapeProfile {
  /** FLOP of one sample */
  opsPerSample: bigint;
  /** each output's shape for one sample, the batch axis left out */
  outputShapes: number[][];
}

export interface ModelCatalog {
  model(sha256: string): ModelInfo | undefined;
  /** The profile of one sample with these per-sample input shapes, if measured. */
  profile(sha256: string, sampleShapes: readonly (readonly number[])[]): ShapeProfile | undefined;
  /** Measures it (one inference on the coordinator); refuses inputs the model cannot take. */
  measure(sha256: string, sampleShapes: readonly (readonly number[])[]): Promise<ShapeProfile>;
}

/** What the coordinator injects as the `onnx` runtime: a re-run of a model for audits (onnxruntime-node, off the event loop). */
export interface OnnxRunner {
  run(sha256: string, inputs: ReadonlyMap<string, { shape: number[]; data: Float32Array }>): Promise<Map<string, { shape: number[]; data: Float32Array }>>;
}

export const ONNX_RUNTIME = 'onnx';

export const profileKey = (sha256: string, sampleShapes: readonly (readonly number[])[]): string =>
  `${sha256}:${sampleShapes.map((s) => s.join('x')).join(',')}`;
