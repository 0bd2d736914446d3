// The onnx kind: a batch of inputs (numpy .npz, one array per model input, the first axis the batch) run through a
// model named by its sha256; split along the batch, checked cheaply on every result, a sample audited by a re-run on
// the coordinator (onnxruntime-node) within the model's tolerance, assembled into an .npz of the outputs.
import * as v from 'valibot';
import { fail, type Parsed } from '../../protocol/errors.ts';
import type { Engine } from '../../protocol/messages.ts';
import { elementCount, f32Tensor, f32Values } from '../../protocol/tensor.ts';
import type { OperandBlock, VerifyContext, WorkKind, Verdict } from '../kind.ts';
import { ONNX_RUNTIME, type ModelCatalog, type ModelInfo, type OnnxRunner, type ShapeProfile } from './model.ts';
import { Normalize, normalizeU8, parseNormalize } from './normalize.ts';
import { readInputNpz, writeNpz, type NpyArray } from './npz.ts';
import { worstElement } from './tolerance.ts';

const MiB = 1024 * 1024;
/** The largest .npz a job may send. */
export const MAX_ONNX_BODY_BYTES = 256 * MiB;
/** The largest assembled output. */
export const MAX_ONNX_OUTPUT_BYTES = 256 * MiB;
/** The most samples in one job. */
export const MAX_BATCH = 65_536;
/** A unit is sized to about this many FLOP: about a second on a laptop GPU, a few on SwiftShader's CPU. */
export const UNIT_TARGET_OPS = 4_000_000_000n;
/** Bytes of a unit's inputs, and of its outputs, at most: what one operand fetch or result message may carry. */
const MAX_UNIT_TENSOR_BYTES = 32 * MiB;
/** Results travel as one f32 tensor of this many columns: the unit's outputs one after another, zero-padded. */
export const RESULT_COLUMNS = 1024;
/**
 * Micro-credits per verified GFLOP: one credit, as gemm's f32, on either engine. A GFLOP of a model is the same
 * useful work on WebGPU as on WASM (the results agree within the model's tolerance), and the coordinator cannot tell
 * which engine a miner used: a higher WebGPU rate would pay whoever claims it. The engine is named in the receipt
 * (`onnx` for WASM, as before, `onnx-webgpu`), information only; the faster engine earns more per second, not per op.
 */
export const MICRO_CREDITS_PER_GIGA_OP = 1_000_000n;

export interface OnnxParams {
  model: string;
  bodyBytes: number;
  /** How uint8 inputs become the model's float32 (normalize.ts); needed when any input is uint8. */
  normalize?: Normalize;
  /** The assembled output's exact size, once the inputs are read: a stored job is charged that, not the bound. */
  outputBytes?: number;
  /** Persisted with the job, so that a restarted coordinator resumes it without measuring the model again. */
  profile?: { opsPerSample: string; outputShapes: number[][] };
}

export interface OnnxJob {
  id: string;
  model: ModelInfo;
  batch: number;
  /** each model input, in the model's order, [batch, ...sample]: float32, or uint8 to be normalised */
  inputs: { name: string; shape: number[]; data: Float32Array | Uint8Array }[];
  normalize?: Normalize;
  profile: ShapeProfile;
  unitBatch: number;
  bodyBytes: number;
  body: Uint8Array;
}

export interface OnnxUnit {
  id: string;
  jobId: string;
  /** samples [start, start + count) */
  start: number;
  count: number;
  /** measured on the job's per-sample shapes: ops(unit) sees only the unit */
  opsPerSample: bigint;
}

/** A unit's outputs, one after another, each [count, ...sample]. */
export type OnnxResult = Float32Array;

const Sha256 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const StoredParams = v.object({
  model: Sha256,
  bodyBytes: v.pipe(v.number(), v.integer(), v.minValue(1)),
  normalize: v.optional(Normalize),
  outputBytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  profile: v.optional(v.object({
    opsPerSample: v.pipe(v.string(), v.regex(/^[0-9]{1,30}$/)),
    outputShapes: v.array(v.array(v.pipe(v.number(), v.integer(), v.minValue(1)))),
  })),
});

/** The onnx kind over the models this catalog holds. */
export function onnxKind(catalog: ModelCatalog): WorkKind<OnnxParams, OnnxJob, OnnxUnit, OnnxResult, Map<string, NpyArray>> & {
  prepare(params: OnnxParams, body: Uint8Array): Promise<Parsed<void>>;
} {
  const modelOf = (sha: string): Parsed<ModelInfo> => {
    const model = catalog.model(sha);
    return model ? { ok: true, value: model } : fail('unknown-model', `no model ${sha} on this coordinator; POST it to /api/models first`);
  };

  const kind = {
    name: 'onnx',
    usage: 'POST /api/models (body: .onnx) answers its SHA256; then POST /api/jobs/onnx?model=SHA256 (body: numpy .npz, one float32 array per input, the first axis the batch; uint8 arrays with &normalize={"scale":[...],"offset":[...]} per channel)',

    parseParams(query: Readonly<Record<string, unknown>>): Parsed<OnnxParams> {
      const sha = query.model;
      if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha)) return fail('bad-params', `model must be a model's sha256 (64 hex digits), got ${JSON.stringify(sha ?? null)}`);
      const model = modelOf(sha);
      if (!model.ok) return model;
      const length = Number(query['content-length']);
      if (!Number.isSafeInteger(length) || length < 1) return fail('bad-body-length', 'send the .npz with a Content-Length header');
      if (query.normalize === undefined) return { ok: true, value: { model: sha, bodyBytes: length } };
      const normalize = parseNormalize(query.normalize);
      if (!normalize.ok) return normalize;
      return { ok: true, value: { model: sha, bodyBytes: length, normalize: normalize.value } };
    },

    footprint({ model, bodyBytes, outputBytes: exact }: OnnxParams) {
      if (bodyBytes > MAX_ONNX_BODY_BYTES) return fail('job-too-large', `an .npz of ${bodyBytes} bytes exceeds the limit of ${MAX_ONNX_BODY_BYTES}`);
      // The output's size is known only once the inputs are read: charged at the bound until then.
      const info = catalog.model(model);
      const outputBytes = exact ?? (info ? outputBound(info, bodyBytes) : MAX_ONNX_OUTPUT_BYTES);
      return { ok: true as const, value: { bodyBytes, outputBytes, heldBytes: 2 * bodyBytes + outputBytes } };
    },

    /** Reads the inputs and measures the model on their per-sample shapes (once per shape): createJob is synchronous. */
    async prepare(params: OnnxParams, body: Uint8Array): Promise<Parsed<void>> {
      const inputs = parseInputs(params, body);
      if (!inputs.ok) return inputs;
      const shapes = inputs.value.inputs.map((i) => i.shape.slice(1));
      if (catalog.profile(params.model, shapes)) return { ok: true, value: undefined };
      try {
        await catalog.measure(params.model, shapes);
        return { ok: true, value: undefined };
      } catch (err) {
        return fail('bad-input', `the model refused inputs of these shapes: ${err instanceof Error ? err.message : String(err)}`.slice(0, 250));
      }
    },

    createJob(id: string, params: OnnxParams, body: Uint8Array<ArrayBuffer>) {
      const parsed = parseInputs(params, body);
      if (!parsed.ok) return parsed;
      const { model, batch, inputs } = parsed.value;
      const profile = catalog.profile(model.sha256, inputs.map((i) => i.shape.slice(1)));
      if (!profile) return fail('bad-input', 'these input shapes were not measured on the model');
      const outputBytes = 4 * batch * profile.outputShapes.reduce((n, s) => n + elementCount(s), 0);
      if (outputBytes > MAX_ONNX_OUTPUT_BYTES) return fail('product-too-large', `the outputs would be ${outputBytes} bytes, over the limit of ${MAX_ONNX_OUTPUT_BYTES}; send fewer samples`);
      const job: OnnxJob = { id, model, batch, inputs, normalize: params.normalize, profile, unitBatch: unitBatchFor(inputs, profile), bodyBytes: params.bodyBytes, body };
      return { ok: true as const, value: { job, operands: [body] } };
    },

    restoreJob(id: string, stored: unknown, operands: readonly Uint8Array[]): OnnxJob {
      const params = v.parse(StoredParams, stored);
      const [body] = operands;
      if (!body) throw new Error(`onnx job ${id}: no stored inputs`);
      const parsed = parseInputs(params, body);
      if (!parsed.ok) throw new Error(`onnx job ${id}: ${parsed.error.message}`);
      const { model, batch, inputs } = parsed.value;
      const saved = params.profile ? { opsPerSample: BigInt(params.profile.opsPerSample), outputShapes: params.profile.outputShapes } : undefined;
      const profile = catalog.profile(model.sha256, inputs.map((i) => i.shape.slice(1))) ?? saved;
      if (!profile) throw new Error(`onnx job ${id}: its input shapes are not measured on model ${model.sha256}`);
      return { id, model, batch, inputs, normalize: params.normalize, profile, unitBatch: unitBatchFor(inputs, profile), bodyBytes: params.bodyBytes, body };
    },

    params: (job: OnnxJob): OnnxParams => ({
      model: job.model.sha256,
      bodyBytes: job.bodyBytes,
      ...(job.normalize ? { normalize: job.normalize } : {}),
      outputBytes: 4 * job.batch * job.profile.outputShapes.reduce((n, s) => n + elementCount(s), 0),
      profile: { opsPerSample: job.profile.opsPerSample.toString(), outputShapes: job.profile.outputShapes },
    }),
    describe: (job: OnnxJob) => ({ model: job.model.sha256, batch: job.batch, opsPerSample: job.profile.opsPerSample.toString() }),

    split(job: OnnxJob): OnnxUnit[] {
      const units: OnnxUnit[] = [];
      for (let start = 0, i = 0; start < job.batch; start += job.unitBatch, i++) {
        units.push({ id: `${job.id}.${i}`, jobId: job.id, start, count: Math.min(job.unitBatch, job.batch - start), opsPerSample: job.profile.opsPerSample });
      }
      return units;
    },

    ops: (unit: OnnxUnit): bigint => unit.opsPerSample * BigInt(unit.count),

    requirements: () => ({ precision: 'f32', features: [] }),

    leasePayload(job: OnnxJob, unit: OnnxUnit) {
      // Inputs named by hash, not carried: the miner fetches them over HTTP (a detection input is 688 KB as u8), and
      // the data channel keeps to control messages. The normalisation stays a parameter: the bytes are as sent.
      const blocks = Object.fromEntries(job.inputs.map((input, i) => [`i${i}`, inputBlock(input, i, unit)]));
      return {
        operands: {},
        blocks,
        params: {
          model: job.model.sha256,
          inputNames: JSON.stringify(job.inputs.map((i) => i.name)),
          outputNames: JSON.stringify(job.model.outputs.map((o) => o.name)),
          ...(job.normalize ? { normalize: JSON.stringify(job.normalize) } : {}),
        },
      };
    },

    decodeResult(job: OnnxJob, unit: OnnxUnit, output: Parameters<WorkKind<unknown, unknown, OnnxUnit, unknown, unknown>['decodeResult']>[2]): Parsed<OnnxResult> {
      const elements = unitOutputElements(job, unit);
      const rows = Math.ceil(elements / RESULT_COLUMNS);
      if (output.dtype !== 'f32' || output.shape.length !== 2 || output.shape[0] !== rows || output.shape[1] !== RESULT_COLUMNS) {
        return fail('shape-mismatch', `result is ${output.dtype} ${output.shape.join('x')}, unit expects f32 ${rows}x${RESULT_COLUMNS} (${elements} output values, zero-padded)`);
      }
      const values = f32Values(output);
      for (let i = elements; i < values.length; i++) if (values[i] !== 0) return fail('shape-mismatch', 'the padding after the outputs is not zero');
      return { ok: true, value: Float32Array.from(values.subarray(0, elements)) };
    },

    encodeResult: (result: OnnxResult) => new Uint8Array(result.buffer, result.byteOffset, result.byteLength),
    decodeStoredResult: (_unit: OnnxUnit, bytes: Uint8Array) => new Float32Array(Uint8Array.from(bytes).buffer),

    /** The cheap checks, on every result: the re-run is `audit`, on the sample the coordinator draws. */
    async verify(_ctx: VerifyContext, job: OnnxJob, unit: OnnxUnit, result: OnnxResult): Promise<Verdict> {
      return cheapChecks(job, unit, result);
    },

    async audit(ctx: VerifyContext, job: OnnxJob, unit: OnnxUnit, result: OnnxResult): Promise<Verdict> {
      const runner = ctx.runtimes[ONNX_RUNTIME] as OnnxRunner | undefined;
      if (!runner) throw new Error('onnx: no onnx runtime injected to re-run units');
      return reRun(runner, job, unit, result);
    },

    microCreditsPerGigaOp: () => MICRO_CREDITS_PER_GIGA_OP,
    // WASM keeps the name receipts had before engines were told apart, so that their signed bytes stay the same.
    receiptKind: (_job: OnnxJob, engine?: Engine) => (engine === 'webgpu' ? 'onnx-webgpu' : 'onnx'),

    assemble(job: OnnxJob, results: ReadonlyMap<string, OnnxResult>): Map<string, NpyArray> {
      const outputs = job.model.outputs.map((o, i) => ({ name: o.name, sample: job.profile.outputShapes[i], data: new Float32Array(job.batch * elementCount(job.profile.outputShapes[i])) }));
      for (const unit of kind.split(job)) {
        const result = results.get(unit.id);
        if (!result) throw new Error(`assemble: no result for unit ${unit.id}`);
        let at = 0;
        for (const out of outputs) {
          const per = elementCount(out.sample);
          out.data.set(result.subarray(at, at + unit.count * per), unit.start * per);
          at += unit.count * per;
        }
      }
      return new Map(outputs.map((o) => [o.name, { shape: [job.batch, ...o.sample], data: o.data }]));
    },

    encodeOutput(_job: OnnxJob, output: Map<string, NpyArray>) {
      return { contentType: 'application/octet-stream', headers: { 'x-ergon-format': 'npz' }, body: writeNpz(output) };
    },
  };
  return kind;

  function parseInputs(params: OnnxParams, body: Uint8Array): Parsed<{ model: ModelInfo; batch: number; inputs: OnnxJob['inputs'] }> {
    const model = modelOf(params.model);
    if (!model.ok) return model;
    const arrays = readInputNpz(body, MAX_ONNX_BODY_BYTES);
    if (!arrays.ok) return arrays;
    const inputs: OnnxJob['inputs'] = [];
    let batch = -1;
    for (const spec of model.value.inputs) {
      const array = arrays.value.get(spec.name);
      if (!array) return fail('bad-input', `input ${JSON.stringify(spec.name)} is missing; the model takes ${model.value.inputs.map((i) => i.name).join(', ')}`);
      if (array.shape.length !== spec.shape.length) return fail('bad-shape', `input ${spec.name} has ${array.shape.length} dimensions, the model takes ${spec.shape.length} (${spec.shape.join('x')})`);
      for (let d = 1; d < spec.shape.length; d++) {
        const want = spec.shape[d];
        if (typeof want === 'number' && want !== array.shape[d]) return fail('bad-shape', `input ${spec.name} is ${array.shape.join('x')}, the model takes ${spec.shape.join('x')}`);
        if (array.shape[d] < 1) return fail('bad-shape', `input ${spec.name} has an empty dimension`);
      }
      if (batch >= 0 && array.shape[0] !== batch) return fail('bad-shape', `input ${spec.name} has a batch of ${array.shape[0]}, another input ${batch}`);
      batch = array.shape[0];
      if (array.data instanceof Uint8Array) {
        if (!params.normalize) return fail('bad-dtype', `input ${spec.name} is uint8: say how it becomes the model's float32 with normalize={"scale":[...],"offset":[...]}`);
        if (array.shape.length < 2 || array.shape[1] !== params.normalize.scale.length) {
          return fail('bad-shape', `normalize names ${params.normalize.scale.length} channels, input ${spec.name} has ${array.shape[1] ?? 1} along axis 1`);
        }
      } else if (!array.data.every(Number.isFinite)) return fail('non-finite', `input ${spec.name} contains NaN or Infinity`);
      inputs.push({ name: spec.name, shape: array.shape, data: array.data });
    }
    for (const name of arrays.value.keys()) {
      if (!model.value.inputs.some((i) => i.name === name)) return fail('bad-input', `the model has no input ${JSON.stringify(name)}; it takes ${model.value.inputs.map((i) => i.name).join(', ')}`);
    }
    if (batch < 1 || batch > MAX_BATCH) return fail('bad-shape', `the batch must be 1 to ${MAX_BATCH} samples, got ${batch}`);
    for (const input of inputs) {
      if (input.data.BYTES_PER_ELEMENT * elementCount(input.shape.slice(1)) > MAX_UNIT_TENSOR_BYTES) return fail('bad-shape', `one sample of ${input.name} is over ${MAX_UNIT_TENSOR_BYTES} bytes`);
    }
    return { ok: true, value: { model: model.value, batch, inputs } };
  }
}

/** Samples per unit: about UNIT_TARGET_OPS, within what one message carries. */
function unitBatchFor(inputs: OnnxJob['inputs'], profile: ShapeProfile): number {
  const byOps = profile.opsPerSample > 0n ? Number(UNIT_TARGET_OPS / profile.opsPerSample) : MAX_BATCH;
  const inBytes = inputs.reduce((n, i) => Math.max(n, i.data.BYTES_PER_ELEMENT * elementCount(i.shape.slice(1))), 1);
  const outBytes = 4 * profile.outputShapes.reduce((n, s) => n + elementCount(s), 0);
  return Math.max(1, Math.min(byOps, Math.floor(MAX_UNIT_TENSOR_BYTES / inBytes), Math.floor(MAX_UNIT_TENSOR_BYTES / Math.max(4, outBytes))));
}

/** An upper bound on the output of a job of this many body bytes, where the model's shapes are fixed. */
function outputBound(model: ModelInfo, bodyBytes: number): number {
  const fixed = (s: (number | string)[]) => s.slice(1).every((d) => typeof d === 'number');
  if (!model.inputs.every((i) => fixed(i.shape)) || !model.outputs.every((o) => fixed(o.shape))) return MAX_ONNX_OUTPUT_BYTES;
  // Inputs may be uint8: a byte per value bounds the samples a body holds from above.
  const perSampleIn = model.inputs.reduce((n, i) => n + elementCount(i.shape.slice(1) as number[]), 0);
  const perSampleOut = 4 * model.outputs.reduce((n, o) => n + elementCount(o.shape.slice(1) as number[]), 0);
  return Math.min(MAX_ONNX_OUTPUT_BYTES, Math.ceil(bodyBytes / Math.max(1, perSampleIn)) * perSampleOut);
}

/** A unit's samples of one input as a block: its bytes exactly as sent, u8 or f32, named by input and sample range. */
function inputBlock(input: OnnxJob['inputs'][number], i: number, unit: OnnxUnit): OperandBlock {
  return {
    key: `i${i}:${unit.start}:${unit.count}`,
    dtype: input.data instanceof Uint8Array ? 'u8' : 'f32',
    shape: [unit.count, ...input.shape.slice(1)],
    // A copy: the coordinator's blob cache keeps these bytes, and a view would keep the whole job's body alive.
    bytes: () => {
      const slice = sampleSlice(input, unit);
      return new Uint8Array(slice.buffer.slice(slice.byteOffset, slice.byteOffset + slice.byteLength));
    },
  };
}

function sampleSlice(input: OnnxJob['inputs'][number], unit: OnnxUnit): Float32Array | Uint8Array {
  const per = elementCount(input.shape.slice(1));
  return input.data.subarray(unit.start * per, (unit.start + unit.count) * per);
}

/** The unit's samples of an input as the model takes them: float32, uint8 normalised as the miner does. */
function modelInput(job: OnnxJob, input: OnnxJob['inputs'][number], unit: OnnxUnit): { shape: number[]; data: Float32Array } {
  const shape = [unit.count, ...input.shape.slice(1)];
  const slice = sampleSlice(input, unit);
  if (!(slice instanceof Uint8Array)) return { shape, data: slice };
  if (!job.normalize) throw new Error(`onnx job ${job.id}: uint8 input ${input.name} without a normalisation`);
  return { shape, data: normalizeU8(slice, shape, job.normalize) };
}

function unitOutputElements(job: OnnxJob, unit: OnnxUnit): number {
  return unit.count * job.profile.outputShapes.reduce((n, s) => n + elementCount(s), 0);
}

/** Every result: finite, and each output within its range (a Sigmoid's or Softmax's [0, 1]). */
function cheapChecks(job: OnnxJob, unit: OnnxUnit, result: OnnxResult): Verdict {
  let at = 0;
  for (const [i, out] of job.model.outputs.entries()) {
    const size = unit.count * elementCount(job.profile.outputShapes[i]);
    const values = result.subarray(at, at + size);
    at += size;
    const range = job.model.outputRanges[out.name];
    // Within the model's tolerance of its range: onnxruntime's Sigmoid gives 1.0000001 for large inputs (seen on
    // PaddleOCR det over a page of 30 lines).
    const slack = job.model.tolerance.abs;
    for (const x of values) {
      if (!Number.isFinite(x)) return { ok: false, error: { code: 'non-finite', message: `output ${out.name} contains NaN or Infinity` } };
      if (range && (x < range[0] - slack || x > range[1] + slack)) {
        return { ok: false, error: { code: 'verification-failed', message: `output ${out.name} has ${x}, outside [${range[0]}, ${range[1]}]` } };
      }
    }
  }
  return { ok: true };
}

/** Re-runs the unit on the coordinator and compares every output element within the model's tolerance (tolerance.ts). */
async function reRun(runner: OnnxRunner, job: OnnxJob, unit: OnnxUnit, result: OnnxResult): Promise<Verdict> {
  const inputs = new Map(job.inputs.map((input) => [input.name, modelInput(job, input, unit)]));
  const reference = await runner.run(job.model.sha256, inputs);
  const { abs, rel } = job.model.tolerance;
  let at = 0;
  for (const out of job.model.outputs) {
    const ref = reference.get(out.name);
    if (!ref) throw new Error(`onnx audit: the re-run has no output ${out.name}`);
    const got = result.subarray(at, at + ref.data.length);
    const worst = worstElement(got, ref.data, job.model.tolerance);
    if (!(worst.fraction <= 1)) {
      const i = worst.index;
      return { ok: false, error: { code: 'verification-failed', message: `audit: output ${out.name}[${i}] is ${got[i]}, the re-run gives ${ref.data[i]} (tolerance ${abs} + ${rel}·(|x| + rms) = ${worst.allowance.toPrecision(3)})` } };
    }
    at += ref.data.length;
  }
  return { ok: true };
}

/** What a miner sends back: its outputs, in the model's order, one after another, zero-padded to RESULT_COLUMNS. */
export function packResult(outputs: readonly Float32Array[]): ReturnType<typeof f32Tensor> {
  const elements = outputs.reduce((n, o) => n + o.length, 0);
  const rows = Math.max(1, Math.ceil(elements / RESULT_COLUMNS));
  const packed = new Float32Array(rows * RESULT_COLUMNS);
  let at = 0;
  for (const output of outputs) {
    packed.set(output, at);
    at += output.length;
  }
  return f32Tensor([rows, RESULT_COLUMNS], packed);
}
