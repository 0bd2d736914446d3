// The page's handle on the GPU worker: promises in, typed messages across.
import type { FromWorker, GpuDescription, ToWorker } from './worker-messages.ts';

export class GpuClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: { c: Float32Array; gpuSeconds: number }) => void; reject: (e: Error) => void }>();
  private ready: Promise<GpuDescription> | undefined;
  private readyWaiter: { resolve: (d: GpuDescription) => void; reject: (e: Error) => void } | undefined;

  constructor(private readonly onDeviceLost: (message: string) => void) {
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'ergon-gpu' });
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.handle(event.data);
  }

  /** Acquires the adapter and device in the worker; rejects with a reason a person can read. */
  init(): Promise<GpuDescription> {
    this.ready ??= new Promise<GpuDescription>((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
      this.post({ type: 'init' });
    });
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  gemm(m: number, k: number, n: number, a: Float32Array, b: Float32Array): Promise<{ c: Float32Array; gpuSeconds: number }> {
    const id = this.nextId++;
    const aCopy = a.slice();
    const bCopy = b.slice();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'gemm', id, m, k, n, a: aCopy.buffer, b: bCopy.buffer }, [aCopy.buffer, bCopy.buffer]);
    });
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
        this.readyWaiter?.reject(new Error(message.message));
        return;
      case 'gemm-done':
        this.pending.get(message.id)?.resolve({ c: new Float32Array(message.c), gpuSeconds: message.gpuSeconds });
        this.pending.delete(message.id);
        return;
      case 'gemm-failed':
        this.pending.get(message.id)?.reject(new Error(message.message));
        this.pending.delete(message.id);
        return;
      case 'device-lost':
        this.ready = undefined;
        this.onDeviceLost(message.message);
        return;
    }
  }
}
