// Runs the GEMM kernels on a GPUDevice: pooled buffers, a kernel per shape and precision, dispatches split to a time
// budget, timed; two units in flight, so that one unit's upload and read-back overlap the other's compute.
import { UnitCancelledError } from '../cancelled.ts';
import {
  CANDIDATES, configName, f16Config, kernelSource, SMALL_M_CONFIGS, tileCols, tileRows, variantFor,
  type KernelConfig, type KernelVariant, type Precision, type SmallMConfig,
} from './kernel-config.ts';
import { ResidentOperands, writeOperand } from './resident-operands.ts';

/**
 * Longest a single command buffer should run: well under the ~2 s after which Windows resets a GPU, and short
 * enough that the compositor gets the GPU between dispatches, so the page stays smooth.
 */
export const DISPATCH_BUDGET_MS = 100;
const PARAMS_BYTES = 32;
/**
 * Units run() keeps in flight: one computing while the next uploads (or the last reads back). Two is enough to keep
 * the GPU busy; each costs a set of operand buffers.
 */
export const UNITS_IN_FLIGHT = 2;

/** How long a unit's compute took; without upload or read-back. */
export interface GemmTiming {
  /**
   * Sum over dispatches of the compute pass's time on the GPU's own clock (timestamp queries), where the adapter has
   * `timestamp-query`; else the same as submitSeconds.
   */
  gpuSeconds: number;
  /** Sum over dispatches of submit to completion as seen from JavaScript: what a page can time on any adapter. */
  submitSeconds: number;
  dispatches: number;
}

export interface GemmRun extends GemmTiming {
  c: Float32Array<ArrayBuffer>;
}

/** An operand as uploaded: f32 values, or f16 ones as their IEEE half bits (what a Float16Array's buffer holds). */
type Operand = Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>;

/** Asked for f16 work on a device without the `shader-f16` feature. */
export class NoShaderF16Error extends Error {}

/** The precision a pair of operands is stored in: both Float32Array (f32) or both Uint16Array of half bits (f16). */
function precisionOf(a: Operand, b: Operand): Precision {
  const precision = a instanceof Float32Array ? 'f32' : a instanceof Uint16Array ? 'f16' : null;
  if (precision === null || (precision === 'f32' ? !(b instanceof Float32Array) : !(b instanceof Uint16Array))) {
    throw new TypeError('gemm: A and B must both be Float32Array (f32) or both Uint16Array of IEEE half bits (f16)');
  }
  return precision;
}

type Role = 'A' | 'B' | 'C' | 'readback';
interface Shape {
  m: number;
  k: number;
  n: number;
  precision: Precision;
}

/** Names one compiled kernel: a config's variant at a precision. Its pipeline and its measured speed are kept under this key. */
const kernelKey = (config: KernelConfig, variant: KernelVariant, precision: Precision): string => `${configName(config)} ${variant} ${precision}`;
const USAGE: Record<Role, number> = {
  A: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  B: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  C: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  readback: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
};

/** Names an operand's bytes (their sha256) so that it may stay on the GPU across units (resident-operands.ts). */
export interface OperandKeys {
  a?: string;
  b?: string;
}

/**
 * One unit's device buffers (A, B, C and C's read-back staging), each grown to fit, and the shape they hold. A or B
 * may instead be bound to a resident operand's buffer, held until unbind().
 */
class OperandSlot {
  private readonly buffers = new Map<Role, GPUBuffer>();
  private readonly bound = new Map<'A' | 'B', { sha256: string; buffer: GPUBuffer }>();
  shape: Shape = { m: 0, k: 0, n: 0, precision: 'f32' };

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
  ) {}

  /** Writes the operands into this slot's A and B, and sizes its C (f32 at either precision). The GPU copies them in queue order. */
  upload(shape: Shape, a: Operand, b: Operand, keys: OperandKeys = {}, resident?: ResidentOperands): void {
    const { m, k, n } = shape;
    if (a.length !== m * k || b.length !== k * n) throw new RangeError(`gemm: operands do not match ${m}x${k}x${n}`);
    this.shape = shape;
    this.place('A', a, keys.a, resident);
    this.place('B', b, keys.b, resident);
    this.buffer('C', m * n * 4);
  }

  /** Binds a resident copy of a named operand (uploaded once), or writes it into this slot's own buffer. */
  private place(role: 'A' | 'B', data: Operand, sha256: string | undefined, resident: ResidentOperands | undefined): void {
    if (sha256 && resident && resident.budgetBytes > 0) {
      this.bound.set(role, { sha256, buffer: resident.acquire(sha256, data) });
      return;
    }
    const whole = data.byteLength - (data.byteLength % 4);
    writeOperand(this.device, this.buffer(role, whole < data.byteLength ? whole + 4 : whole), data);
  }

  /** The buffer a role's operand is in: a resident one bound by upload(), else this slot's own. */
  operand(role: 'A' | 'B'): GPUBuffer {
    return this.bound.get(role)?.buffer ?? this.buffer(role, 0);
  }

  /** Lets go of the resident operands the last upload bound (they may then be evicted). */
  unbind(resident: ResidentOperands | undefined): void {
    for (const { sha256 } of this.bound.values()) resident?.release(sha256);
    this.bound.clear();
  }

  /** The buffer for a role, grown to a power of two when `bytes` do not fit; 0 just returns it. */
  buffer(role: Role, bytes: number): GPUBuffer {
    const existing = this.buffers.get(role);
    if (existing && existing.size >= bytes) return existing;
    const limit = Math.min(this.device.limits.maxBufferSize, this.device.limits.maxStorageBufferBindingSize);
    if (bytes > limit) throw new RangeError(`gemm: ${role} needs ${bytes} bytes; this device binds at most ${limit}`);
    existing?.destroy();
    const size = Math.min(limit - (limit % 4), Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1)))));
    const buffer = this.device.createBuffer({ label: `gemm ${this.label} ${role}`, size, usage: USAGE[role] });
    this.buffers.set(role, buffer);
    return buffer;
  }

  destroy(): void {
    for (const buffer of this.buffers.values()) buffer.destroy();
    this.buffers.clear();
  }
}

/**
 * A compute pass's duration on the GPU's clock: timestamps at its start and end, resolved and read back after it.
 * Browsers may coarsen timestamps (Chromium to 100 us unless unsafe APIs are on), so a reading of zero, or one longer
 * than submit to completion (which contains it), is not trusted.
 */
class PassTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly readback: GPUBuffer;
  readonly writes: GPUComputePassTimestampWrites;

  constructor(device: GPUDevice) {
    this.querySet = device.createQuerySet({ label: 'gemm pass time', type: 'timestamp', count: 2 });
    this.resolved = device.createBuffer({ label: 'gemm pass time', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ label: 'gemm pass time read-back', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.writes = { querySet: this.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
  }

  /** Adds, after the pass, the commands that bring its timestamps to the read-back buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    encoder.resolveQuerySet(this.querySet, 0, 2, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, this.readback, 0, 16);
  }

  /** The pass's milliseconds, once the work is done; null when the reading is not to be trusted. */
  async readMs(submitMs: number): Promise<number | null> {
    await this.readback.mapAsync(GPUMapMode.READ);
    const [start, end] = new BigUint64Array(this.readback.getMappedRange());
    this.readback.unmap();
    const ms = Number(end - start) / 1e6;
    return ms > 0 && ms <= submitMs ? ms : null;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolved.destroy();
    this.readback.destroy();
  }
}

export class GemmKernel {
  /** What upload(), compute() and readBack() work on: operands kept resident across calls (tuning, benchmarks). */
  private readonly fixed: OperandSlot;
  /** Named operands kept on the GPU across run() calls, within their budget (0 until the worker sets one). */
  readonly resident: ResidentOperands;
  /** run()'s slots; a unit waits for a free one. */
  private readonly free: OperandSlot[];
  private readonly slotWaiters: ((slot: OperandSlot) => void)[] = [];
  /** Dispatches of one unit at a time: a unit's dispatches share the params buffer and are timed one by one. */
  private gpuTurn: Promise<unknown> = Promise.resolve();
  private readonly params: GPUBuffer;
  /** Times each compute pass on the GPU's clock; null where the device has no `timestamp-query`. */
  private readonly timer: PassTimer | null;
  /** Keyed by kernelKey. */
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  /** Measured speed of each kernel (kernelKey) on this device, learned from each dispatch; sizes the next ones. */
  private readonly opsPerMs = new Map<string, number>();
  /** How long one dispatch should take; the default keeps every command buffer well inside a watchdog's patience. */
  dispatchBudgetMs = DISPATCH_BUDGET_MS;
  /** The shape last uploaded, by either path: what `variant` and `activeConfig` describe. */
  private shape: Shape = { m: 0, k: 0, n: 0, precision: 'f32' };

  private constructor(
    private readonly device: GPUDevice,
    readonly config: KernelConfig,
    /** Run instead of `config` for products of few rows, the first whose maxRows fits; empty: always `config`. */
    readonly smallM: readonly SmallMConfig[],
  ) {
    this.params = device.createBuffer({ label: 'gemm params', size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.timer = device.features.has('timestamp-query') ? new PassTimer(device) : null;
    this.fixed = new OperandSlot(device, 'resident');
    this.resident = new ResidentOperands(device, 0);
    this.free = Array.from({ length: UNITS_IN_FLIGHT }, (_, i) => new OperandSlot(device, `unit ${i}`));
  }

  /**
   * Compiles the given variants of a config now (by default both, f32 only); any other, f16 ones and the small-M
   * configs are compiled when first needed (a direct kernel compiles in well under 0.1 s). f16 needs the device's
   * `shader-f16` (see supportsF16): asking for it here without one throws NoShaderF16Error.
   */
  static async create(
    device: GPUDevice,
    config: KernelConfig = CANDIDATES[0],
    variants: KernelVariant[] = ['vec4', 'scalar'],
    smallM: readonly SmallMConfig[] = SMALL_M_CONFIGS,
    precisions: readonly Precision[] = ['f32'],
  ): Promise<GemmKernel> {
    const kernel = new GemmKernel(device, config, smallM);
    await Promise.all(precisions.flatMap((precision) => variants.map((variant) => kernel.pipeline(variant, config, precision))));
    return kernel;
  }

  /** Whether this device runs f16 units: it was given the `shader-f16` feature. */
  get supportsF16(): boolean {
    return this.device.features.has('shader-f16');
  }

  /**
   * The compiled pipeline of a config's variant (by default this kernel's config, f32): vec4 for aligned shapes,
   * scalar for the rest. At f16 the config runs as its direct twin (f16Config).
   */
  pipeline(variant: KernelVariant, config: KernelConfig = this.config, precision: Precision = 'f32'): Promise<GPUComputePipeline> {
    this.requirePrecision(precision);
    const compiled = precision === 'f16' ? f16Config(config) : config;
    const key = kernelKey(compiled, variant, precision);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const source = kernelSource(compiled, variant, precision);
      const label = `${source.label} ${configName(compiled)}`;
      const module = this.device.createShaderModule({ label, code: source.code });
      pipeline = this.device.createComputePipelineAsync({ label, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** The variant for the last uploaded shape. */
  get variant(): KernelVariant {
    return variantFor(this.shape.k, this.shape.n);
  }

  /** The config for the last uploaded shape: the small-M one for GEMV-like products, the direct twin for f16. */
  get activeConfig(): KernelConfig {
    return this.configFor(this.shape.m, this.shape.precision);
  }

  /**
   * C (m x n) = A (m x k) · B (k x n), all row-major: upload, compute, read back. C is f32; A and B are f32
   * (Float32Array), or f16 as Uint16Array of IEEE half bits, multiplied and summed in f32, where the device has
   * `shader-f16` (else NoShaderF16Error). Calls may overlap, at either precision: up to UNITS_IN_FLIGHT units hold
   * operand buffers at once and take turns on the GPU in call order, so a unit uploads while the one before it
   * computes and reads back while the one after it computes. A unit whose `signal` is aborted before its turn
   * comes is dropped with UnitCancelledError; once computing, it finishes.
   */
  run(m: number, k: number, n: number, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>, signal?: AbortSignal, keys?: OperandKeys): Promise<GemmRun>;
  run(m: number, k: number, n: number, a: Uint16Array<ArrayBuffer>, b: Uint16Array<ArrayBuffer>, signal?: AbortSignal, keys?: OperandKeys): Promise<GemmRun>;
  async run(m: number, k: number, n: number, a: Operand, b: Operand, signal?: AbortSignal, keys: OperandKeys = {}): Promise<GemmRun> {
    const precision = precisionOf(a, b);
    this.requirePrecision(precision);
    const slot = await this.acquire();
    try {
      slot.upload({ m, k, n, precision }, a, b, keys, this.resident);
      this.shape = slot.shape;
      const turn = this.gpuTurn.then(async () => {
        if (signal?.aborted) throw new UnitCancelledError();
        const timing = await this.computeIn(slot);
        // Queue the copy of C, and ask for its mapping, before the next unit's dispatch: the map then waits for
        // this unit's work only.
        return { ...timing, mapped: this.startReadBack(slot) };
      });
      this.gpuTurn = turn.catch(() => undefined);
      const { mapped, ...timing } = await turn;
      return { c: await mapped, ...timing };
    } finally {
      slot.unbind(this.resident);
      this.release(slot);
    }
  }

  /** Puts operands, f32 or f16 as in run(), into the resident buffers; they stay there for compute() until the next upload(). */
  upload(m: number, k: number, n: number, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>): void;
  upload(m: number, k: number, n: number, a: Uint16Array<ArrayBuffer>, b: Uint16Array<ArrayBuffer>): void;
  upload(m: number, k: number, n: number, a: Operand, b: Operand): void {
    const precision = precisionOf(a, b);
    this.requirePrecision(precision);
    this.fixed.upload({ m, k, n, precision }, a, b);
    this.shape = this.fixed.shape;
  }

  /** Computes C from the resident operands. Not to be called while run() calls are in flight. */
  compute(): Promise<GemmTiming> {
    return this.computeIn(this.fixed);
  }

  /** C of the last compute() on the resident operands. */
  readBack(): Promise<Float32Array<ArrayBuffer>> {
    return this.startReadBack(this.fixed);
  }

  /** Computes a slot's C from its operands, in dispatches of about dispatchBudgetMs each. */
  private async computeIn(slot: OperandSlot): Promise<GemmTiming> {
    const { m, k, n, precision } = slot.shape;
    const config = this.configFor(m, precision);
    const variant = variantFor(k, n);
    const pipeline = await this.pipeline(variant, config, precision);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [slot.operand('A'), slot.operand('B'), slot.buffer('C', 0), this.params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const speedKey = kernelKey(config, variant, precision);
    const rowTile = tileRows(config);
    const colTile = tileCols(config);
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    let gpuMs = 0;
    let submitMs = 0;
    let dispatches = 0;
    for (let row = 0; row < m; ) {
      // Until the speed is known, start with one row of tiles; afterwards fill the budget.
      const budgetOps = this.dispatchBudgetMs * (this.opsPerMs.get(speedKey) ?? 0);
      const rows = Math.min(m - row, maxGroups * rowTile, Math.max(rowTile, Math.floor(budgetOps / (2 * n * k) / rowTile) * rowTile));
      // When even one row of tiles is over budget (long K and N), split the columns as well.
      const cols = Math.min(n, maxGroups * colTile, Math.max(colTile, Math.floor(budgetOps / (2 * rows * k) / colTile) * colTile || n));
      for (let col = 0; col < n; col += cols) {
        const colEnd = Math.min(n, col + cols);
        const timed = await this.dispatch(config, speedKey, pipeline, bindGroup, m, n, k, row, row + rows, col, colEnd);
        gpuMs += timed.gpuMs;
        submitMs += timed.submitMs;
        dispatches++;
      }
      row += rows;
    }
    return { gpuSeconds: gpuMs / 1000, submitSeconds: submitMs / 1000, dispatches };
  }

  /** Copies a slot's C to its staging buffer now; the promise gives C once the copy is done. */
  private startReadBack(slot: OperandSlot): Promise<Float32Array<ArrayBuffer>> {
    const bytes = slot.shape.m * slot.shape.n * 4;
    const readback = slot.buffer('readback', bytes);
    const encoder = this.device.createCommandEncoder({ label: 'gemm read-back' });
    encoder.copyBufferToBuffer(slot.buffer('C', bytes), 0, readback, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    return readback.mapAsync(GPUMapMode.READ, 0, bytes).then(() => {
      const c = new Float32Array(readback.getMappedRange(0, bytes).slice(0));
      readback.unmap();
      return c;
    });
  }

  private acquire(): Promise<OperandSlot> {
    const slot = this.free.pop();
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(slot: OperandSlot): void {
    const waiter = this.slotWaiters.shift();
    if (waiter) waiter(slot);
    else this.free.push(slot);
  }

  /** The config for a product of m rows: the small-M one for GEMV-like products, else this kernel's; at f16, its direct twin. */
  private configFor(m: number, precision: Precision): KernelConfig {
    const config = this.smallM.find((small) => m <= small.maxRows)?.config ?? this.config;
    return precision === 'f16' ? f16Config(config) : config;
  }

  private requirePrecision(precision: Precision): void {
    if (precision === 'f16' && !this.supportsF16) {
      throw new NoShaderF16Error('gemm: f16 operands need the shader-f16 feature, and this device was not given it (the adapter lacks it or it was not requested)');
    }
  }

  destroy(): void {
    for (const slot of [this.fixed, ...this.free]) slot.destroy();
    this.resident.destroy();
    this.timer?.destroy();
    this.params.destroy();
  }

  /**
   * Runs one dispatch and waits for it. Its time, on the GPU's clock where timestamp queries are present, also
   * teaches the kernel its speed, which sizes the next dispatches to the budget.
   */
  private async dispatch(config: KernelConfig, speedKey: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, m: number, n: number, k: number, rowOffset: number, rowEnd: number, colOffset: number, colEnd: number): Promise<{ gpuMs: number; submitMs: number }> {
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([m, n, k, rowOffset, rowEnd, colOffset, colEnd, 0]));
    const encoder = this.device.createCommandEncoder({ label: 'gemm' });
    const pass = encoder.beginComputePass(this.timer ? { timestampWrites: this.timer.writes } : undefined);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil((colEnd - colOffset) / tileCols(config)), Math.ceil((rowEnd - rowOffset) / tileRows(config)));
    pass.end();
    this.timer?.resolve(encoder);
    const started = performance.now();
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    const submitMs = Math.max(performance.now() - started, 0.001);
    const gpuMs = (await this.timer?.readMs(submitMs)) ?? submitMs;
    const ops = 2 * (rowEnd - rowOffset) * (colEnd - colOffset) * k;
    const known = this.opsPerMs.get(speedKey);
    this.opsPerMs.set(speedKey, known === undefined ? ops / gpuMs : 0.5 * known + 0.5 * (ops / gpuMs));
    return { gpuMs, submitMs };
  }

}
