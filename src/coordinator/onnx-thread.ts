// The coordinator's onnxruntime-node, on a thread of its own (onnx-worker.ts), so that inspecting, measuring and
// auditing models never stops the event loop that serves HTTP and keeps miners' links alive. One thread runs the
// requests in turn; onnxruntime spreads each over the cores itself.
import { Worker } from 'node:worker_threads';
import type { TensorInfo } from '../work/onnx/model.ts';

/** Named float32 tensors as they cross to and from the thread. */
export type OnnxTensors = [name: string, tensor: { shape: number[]; data: Float32Array }][];

export type OnnxRequest =
  | { id: number; op: 'inspect'; bytes: Uint8Array }
  | { id: number; op: 'profile'; bytes: Uint8Array; inputs: OnnxTensors; profilePrefix: string }
  | { id: number; op: 'run'; sha256: string; model: string | Uint8Array; inputs: OnnxTensors };

export type OnnxReply =
  | { id: number; ok: true; op: 'inspect'; inputs: TensorInfo[]; outputs: TensorInfo[] }
  | { id: number; ok: true; op: 'run'; outputs: OnnxTensors }
  | { id: number; ok: false; message: string };

type Request = OnnxRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;
type Answer = Extract<OnnxReply, { ok: true }>;

/**
 * The worker's entry is TypeScript, like the rest of the coordinator; a thread does not inherit the loader its parent
 * runs under (tsx, vitest, Playwright), so it loads the entry through tsx's API itself.
 */
const BOOT = `const { workerData } = require('node:worker_threads');
import(workerData.tsx).then(({ tsImport }) => tsImport(workerData.entry, workerData.entry));`;

export class OnnxThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: Answer) => void; reject: (err: Error) => void }>();

  /** A model's inputs and outputs as onnxruntime loads it; rejects with onnxruntime's reason when it cannot. */
  async inspect(bytes: Uint8Array): Promise<{ inputs: TensorInfo[]; outputs: TensorInfo[] }> {
    const carried = new Carried();
    const reply = await this.call({ op: 'inspect', bytes: carried.own(bytes) }, carried);
    if (reply.op !== 'inspect') throw new Error(`onnx thread answered ${reply.op} to inspect`);
    return { inputs: reply.inputs, outputs: reply.outputs };
  }

  /** One run of a fresh, unoptimised session with onnxruntime's profiler writing to profilePrefix*.json. */
  profile(bytes: Uint8Array, inputs: OnnxTensors, profilePrefix: string): Promise<OnnxTensors> {
    const carried = new Carried();
    return this.outputs({ op: 'profile', bytes: carried.own(bytes), inputs: carried.tensors(inputs), profilePrefix }, carried);
  }

  /** A run of the model (its file's path, or its bytes), its session kept by sha256 for the next. */
  run(sha256: string, model: string | Uint8Array, inputs: OnnxTensors): Promise<OnnxTensors> {
    const carried = new Carried();
    return this.outputs({ op: 'run', sha256, model: typeof model === 'string' ? model : carried.own(model), inputs: carried.tensors(inputs) }, carried);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fail(new Error('the onnx thread was closed'));
    await worker?.terminate();
  }

  private async outputs(request: Request, carried: Carried): Promise<OnnxTensors> {
    const reply = await this.call(request, carried);
    if (reply.op !== 'run') throw new Error(`onnx thread answered ${reply.op} to ${request.op}`);
    return reply.outputs;
  }

  private call(request: Request, carried: Carried): Promise<Answer> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      try {
        worker.postMessage({ ...request, id }, carried.transfer);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.waiting.set(id, { resolve, reject });
      worker.ref();
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { tsx: import.meta.resolve('tsx/esm/api'), entry: new URL('./onnx-worker.ts', import.meta.url).href },
    });
    worker.on('message', (reply: OnnxReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (!waiter) return;
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(new Error(reply.message));
    });
    // A thread that dies takes its requests with it; the next request starts another.
    const lost = (err: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the onnx thread exited with code ${code}`)));
    // Idle, it does not keep the process alive; a request in flight does (ref() in call).
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private fail(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}

/**
 * What a message carries to or from the thread, its arrays owning their buffers. A view (a unit's rows of a job's
 * input) would carry its whole buffer, a copy of the job's input per audit: it is copied to a buffer of its own, which
 * then moves (transfer) rather than being copied again. An array that owns its buffer is cloned: the caller keeps it.
 */
export class Carried {
  readonly transfer: ArrayBuffer[] = [];

  own<A extends Float32Array | Uint8Array>(data: A): A {
    if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return data;
    const copy = data.slice() as A;
    this.transfer.push(copy.buffer as ArrayBuffer);
    return copy;
  }

  tensors(list: OnnxTensors): OnnxTensors {
    return list.map(([name, { shape, data }]) => [name, { shape, data: this.own(data) }]);
  }
}
