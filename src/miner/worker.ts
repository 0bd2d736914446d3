// The GPU worker: owns the WebGPU device, tunes the kernel once per adapter, runs units of any kind it knows
// (src/miner/kinds) under the person's throttle (unthrottled, the next unit uploads while this one computes), and
// recovers from a lost device without the page reloading. Where the browser has no usable WebGPU and the person chose
// it, it runs the units on the CPU instead (onnxruntime-web WASM), under the same throttle.
import { CodedError, toProtocolError } from '../protocol/errors.ts';
import { CpuGemm } from './cpu/cpu-gemm.ts';
import { acquireDevice, NoWebGpuError } from './gpu/device.ts';
import { adapterKey, storedTuning, tune } from './gpu/autotune.ts';
import { UnitCancelledError } from './cancelled.ts';
import { GemmKernel, NoShaderF16Error } from './gpu/gemm.ts';
import { configName } from './gpu/kernel-config.ts';
import { MINER_KINDS } from './kinds/index.ts';
import type { Engines, GpuEngine } from './kinds/kind.ts';
import { pruneRuns, restMs, unthrottled, type RunRecord } from './throttle.ts';
import { cachedOperand, keepOperand } from './operand-cache.ts';
import { OperandFeed } from './operand-feed.ts';
import type { Backend, FromWorker, GpuDescription, Throttle, ToWorker, WorkerTensor } from './worker-messages.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

/** While resting, the worker looks again this often, so a raised throttle or a Stop takes effect quickly. */
const REST_POLL_MS = 200;

interface Gpu extends GpuEngine {
  description: GpuDescription;
  /** Rejects when the device is lost, so a unit in flight fails at once instead of waiting on a dead queue. */
  lost: Promise<never>;
}
interface Cpu {
  gemm: CpuGemm;
  description: GpuDescription;
}

/** One shared start of an engine; a start that fails, or an engine that is dropped, is made again on next use. */
class Engine<T> {
  private value: Promise<T> | undefined;
  constructor(private readonly start: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.value) {
      const starting = this.start();
      this.value = starting;
      starting.catch(() => {
        if (this.value === starting) this.value = undefined;
      });
    }
    return this.value;
  }

  /** The engine if it was started, without starting it. */
  get current(): Promise<T> | undefined {
    return this.value;
  }

  drop(): void {
    this.value = undefined;
  }
}

/** GPU-resident operands and the in-memory copies are each allowed this share of the person's operand budget. */
const RESIDENT_SHARE = 0.5;
let operandBudgetBytes = 0;
const feed = new OperandFeed(0, undefined);

const gpu = new Engine(startGpu);
const cpu = new Engine(startCpu);
let backend: Backend = 'webgpu';
let lostBefore = false;
/** Units are admitted to run one at a time, in the order they came: see admit(). */
let admissions: Promise<unknown> = Promise.resolve();
/** The newest unit, settled when it has finished (or failed). */
let newestUnit: Promise<unknown> = Promise.resolve();
/** Units not yet finished; 'cancel-queued' aborts them, and those not yet computing are dropped. */
const live = new Set<AbortController>();
let throttle: Throttle = { duty: 1, gpuSecondsPerMinute: 60 };
const runs: RunRecord[] = [];

function post(message: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

class DeviceLostError extends CodedError {
  constructor(message: string) {
    super('device-lost', message);
  }
}

async function startGpu(): Promise<Gpu> {
  const acquired = await acquireDevice();
  const lost = acquired.device.lost.then((info): never => {
    gpu.drop(); // the next unit acquires a fresh adapter and device (an adapter gives one device only)
    lostBefore = true;
    post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
    throw new DeviceLostError(`the GPU device was lost (${info.reason})`);
  });
  lost.catch(() => undefined); // observed by the unit in flight, if any
  const key = adapterKey(acquired.adapter, navigator.userAgent);
  const started = performance.now();
  const stored = await storedTuning(key, acquired.device);
  const record = stored ?? (await tune(acquired.device, key));
  const gemm = await GemmKernel.create(acquired.device, record.config);
  gemm.resident.budgetBytes = operandBudgetBytes * RESIDENT_SHARE;
  const description: GpuDescription = {
    backend: 'webgpu',
    adapter: acquired.adapter,
    features: [...acquired.device.features].sort(),
    limits: acquired.limits,
    tuning: { config: configName(record.config), gflops: record.gflops, fresh: !stored, tuneSeconds: (performance.now() - started) / 1000 },
    kinds: [...MINER_KINDS.keys()],
    precisions: gemm.supportsF16 ? ['f32', 'f16'] : ['f32'],
  };
  if (lostBefore) post({ type: 'device-restored', ...description });
  return { device: acquired.device, gemm, description, lost };
}

async function startCpu(): Promise<Cpu> {
  const gemm = await CpuGemm.create();
  const adapter = { vendor: 'cpu', architecture: 'wasm', device: '', description: gemm.description, isFallbackAdapter: true };
  return { gemm, description: { backend: 'wasm', adapter, features: [], limits: {}, tuning: null, kinds: [...MINER_KINDS.keys()], precisions: ['f32'] } };
}

async function describe(): Promise<GpuDescription> {
  return (await (backend === 'wasm' ? cpu.get() : gpu.get())).description;
}

/** The engines a kind runs on; on the GPU, a unit whose device is lost under it runs again once on a fresh device. */
const engines: Engines = {
  get backend() {
    return backend;
  },
  async onGpu(run) {
    for (let attempt = 0; ; attempt++) {
      const current = await gpu.get();
      try {
        return await Promise.race([run(current), current.lost]);
      } catch (err) {
        if (attempt > 0 || !(err instanceof DeviceLostError || gpu.current === undefined)) throw err;
      }
    }
  },
  cpu: () => cpu.get(),
};

async function honourThrottle(signal: AbortSignal): Promise<number> {
  const started = Date.now();
  for (;;) {
    const wait = restMs(throttle, runs, Date.now());
    if (wait <= 0 || signal.aborted) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, REST_POLL_MS)));
  }
}

/**
 * Waits until a unit may start; resolves with the milliseconds it was held back. Units pass one at a time, in order.
 * Unthrottled on the GPU, a unit starts as soon as it comes, so that its upload overlaps the unit before it (the
 * kernel runs their dispatches in turn). Otherwise it waits for the unit before it to finish, so that the throttle
 * reckons its rest from a finished unit; and the WASM engine runs one unit at a time anyway.
 */
function admit(signal: AbortSignal): Promise<number> {
  const before = newestUnit;
  const admitted = admissions.then(async () => {
    if (!(backend === 'webgpu' && unthrottled(throttle))) await before;
    return honourThrottle(signal);
  });
  admissions = admitted.catch(() => undefined);
  return admitted;
}

/** An error thrown while running a unit, with the code the page and the coordinator act on. */
function unitError(err: unknown) {
  if (err instanceof UnitCancelledError) return { code: 'cancelled' as const, message: 'dropped before it ran' };
  if (err instanceof NoShaderF16Error) return { code: 'unsupported-precision' as const, message: err.message };
  return toProtocolError(err, 'engine-failed');
}

/** A unit's operands: those it carries, and those its lease names by hash, fetched (or found) and checked. */
async function fetchOperands(message: Extract<ToWorker, { type: 'unit' }>): Promise<Record<string, WorkerTensor>> {
  const operands = { ...message.operands };
  const { refs, source } = message;
  if (!refs) return operands;
  if (!source) throw new CodedError('operand-unavailable', 'the lease names operands by hash, and no coordinator to fetch them from was given');
  await Promise.all(Object.entries(refs).map(async ([name, ref]) => {
    operands[name] = { dtype: ref.dtype, shape: ref.shape, data: await feed.get(ref, source), sha256: ref.sha256 };
  }));
  return operands;
}

/** Applies the person's operand budget: half on the GPU, half in memory, all of it in Cache Storage. */
function setOperandBudget(budgetBytes: number): void {
  operandBudgetBytes = budgetBytes;
  feed.memoryBudgetBytes = budgetBytes * RESIDENT_SHARE;
  feed.store = budgetBytes > 0 ? { get: cachedOperand, put: (sha256, bytes) => keepOperand(sha256, bytes, budgetBytes) } : undefined;
  if (budgetBytes === 0) feed.clear();
  void gpu.current?.then((current) => {
    current.gemm.resident.budgetBytes = budgetBytes * RESIDENT_SHARE;
  }, () => undefined);
}

async function runMessage(message: Extract<ToWorker, { type: 'unit' }>): Promise<void> {
  const control = new AbortController();
  live.add(control);
  try {
    const kind = MINER_KINDS.get(message.kind);
    if (!kind) throw new CodedError('unknown-kind', `this miner does not run ${message.kind} units`);
    // Operands named by hash are fetched while the unit before this one computes.
    const fetching = fetchOperands(message);
    fetching.catch(() => undefined); // observed below, after admission
    const waitedMs = await admit(control.signal);
    const operands = await fetching;
    const startedAtMs = Date.now();
    const run = await kind.execute({ operands, params: message.params }, engines, control.signal);
    const finishedAtMs = Date.now();
    runs.push({ startedAtMs, finishedAtMs, gpuSeconds: run.gpuSeconds });
    pruneRuns(runs, finishedAtMs);
    post(
      { type: 'unit-done', id: message.id, ...run, waitedMs, startedAtMs, finishedAtMs, restMs: restMs(throttle, runs, finishedAtMs) },
      [run.output.data],
    );
  } catch (err) {
    post({ type: 'unit-failed', id: message.id, error: unitError(err) });
  } finally {
    live.delete(control);
  }
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'init':
      backend = message.backend;
      describe().then(
        (description) => post({ type: 'ready', ...description }),
        (err: unknown) => post({ type: 'init-failed', noWebGpu: err instanceof NoWebGpuError, error: toProtocolError(err, 'engine-failed') }),
      );
      return;
    case 'throttle':
      throttle = message.throttle;
      return;
    case 'lose-device':
      void gpu.current?.then((current) => current.device.destroy(), () => undefined);
      return;
    case 'cancel-queued':
      for (const control of live) control.abort();
      return;
    case 'unit':
      newestUnit = runMessage(message);
      return;
    case 'operand-cache':
      setOperandBudget(message.budgetBytes);
      return;
    case 'clear-operands':
      feed.clear();
      return;
  }
};
