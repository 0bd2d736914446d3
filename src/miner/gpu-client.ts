// The page's handle on the GPU worker: promises in, typed messages across; kind-agnostic, errors keep their codes.
import { CodedError } from '../protocol/errors.ts';
import { UnitCancelledError } from './cancelled.ts';
import type { LeasedPayload } from './kinds/kind.ts';
import { unthrottled } from './throttle.ts';
import type { Backend, FromWorker, GpuDescription, Throttle, ToWorker, UnitTiming, WorkerTensor } from './worker-messages.ts';

export interface GpuRun extends UnitTiming {
  output: WorkerTensor;
}

export interface GpuClientEvents {
  /** The device was lost; the worker makes a new one for the next unit. */
  deviceLost(message: string): void;
  /** A new device is ready after a loss. */
  deviceRestored(description: GpuDescription): void;
}

export class GpuClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: GpuRun) => void; reject: (e: Error) => void }>();
  private ready: Promise<GpuDescription> | undefined;
  private readyWaiter: { resolve: (d: GpuDescription) => void; reject: (e: Error) => void } | undefined;
  /** Set when init failed because this browser has no usable WebGPU (as opposed to a passing error). */
  noWebGpu = false;
  private throttle: Throttle = { duty: 1, gpuSecondsPerMinute: 60 };

  private readonly events: GpuClientEvents;

  /** A bare function is the device-lost handler alone (the benchmark's use). */
  constructor(
    events: GpuClientEvents | ((message: string) => void),
    readonly backend: Backend = 'webgpu',
  ) {
    this.events = typeof events === 'function' ? { deviceLost: events, deviceRestored: () => undefined } : events;
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'ergon-gpu' });
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.handle(event.data);
  }

  /** Acquires the adapter and device in the worker; rejects with a reason a person can read. */
  init(): Promise<GpuDescription> {
    this.ready ??= new Promise<GpuDescription>((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
      this.post({ type: 'init', backend: this.backend });
    });
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  /** Tells the worker how much of the GPU it may use; it applies from the next unit. */
  setThrottle(throttle: Throttle): void {
    this.throttle = throttle;
    this.post({ type: 'throttle', throttle });
  }

  /** Whether the worker may run units back to back (and so take the next one while this one computes). */
  get unthrottled(): boolean {
    return unthrottled(this.throttle);
  }

  /** Destroys the worker's device: a real device loss, to show (and test) that mining recovers. */
  loseDevice(): void {
    this.post({ type: 'lose-device' });
  }

  /** Drops the units sent that have not started computing: their run() rejects with UnitCancelledError. */
  cancelQueued(): void {
    this.post({ type: 'cancel-queued' });
  }

  /**
   * Runs a unit of a kind the description lists. Send the next one before this one is done: the worker uploads it
   * while this one computes, so the GPU does not wait on the page. The operands' buffers are moved to the worker,
   * not copied: they are detached here once this returns. Rejects with UnitCancelledError when cancelQueued()
   * dropped it, else with a CodedError.
   */
  run(kind: string, payload: LeasedPayload): Promise<GpuRun> {
    const id = this.nextId++;
    const operands = { ...payload.operands };
    const named = payload.refs && payload.source ? { refs: { ...payload.refs }, source: { ...payload.source } } : {};
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'unit', id, kind, operands, params: { ...payload.params }, ...named }, [...new Set(Object.values(operands).map((t) => t.data))]);
    });
  }

  /** How many bytes of operands the worker may keep (GPU, memory, Cache Storage); 0: none, every unit fetches. */
  setOperandCache(budgetBytes: number): void {
    this.post({ type: 'operand-cache', budgetBytes });
  }

  /** Forgets the operands the worker holds in memory (the page clears Cache Storage itself). */
  clearOperands(): void {
    this.post({ type: 'clear-operands' });
  }

  terminate(): void {
    this.worker.terminate();
    for (const waiter of this.pending.values()) waiter.reject(new Error('the GPU worker was stopped'));
    this.pending.clear();
  }

  private post(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  private handle(message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        this.readyWaiter?.resolve(message);
        return;
      case 'init-failed':
        this.noWebGpu = message.noWebGpu;
        this.readyWaiter?.reject(new CodedError(message.error.code, message.error.message));
        return;
      case 'unit-done': {
        const { type: _type, id, ...run } = message;
        this.pending.get(id)?.resolve(run);
        this.pending.delete(id);
        return;
      }
      case 'unit-failed': {
        const { code, message: sentence } = message.error;
        this.pending.get(message.id)?.reject(code === 'cancelled' ? new UnitCancelledError() : new CodedError(code, sentence));
        this.pending.delete(message.id);
        return;
      }
      case 'device-lost':
        this.events.deviceLost(message.message);
        return;
      case 'device-restored': {
        // The new device may differ (another adapter, other features): the next hello says what it runs.
        const { type: _type, ...description } = message;
        this.ready = Promise.resolve(description);
        this.events.deviceRestored(description);
        return;
      }
    }
  }
}
