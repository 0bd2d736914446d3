// An onnx miner scripted in Node: fetches the lease's model from the coordinator's origin by hash (checked), runs it
// with onnxruntime-node, and returns the outputs packed as the kind expects; or, as a test says, something else.
// onnxruntime runs on a thread of its own (the coordinator's OnnxThread), as a real miner runs in a process of its
// own: a test's coordinator often shares this process, and a run on the main thread would stall it.
import { createHash } from 'node:crypto';
import { OnnxThread, type OnnxTensors } from '../../src/coordinator/onnx-thread.ts';
import { f32Values } from '../../src/protocol/tensor.ts';
import { normalizeU8, parseNormalize } from '../../src/work/onnx/normalize.ts';
import { packResult } from '../../src/work/onnx/onnx.ts';
import type { MessageOf } from '../../src/miner/coordinator-link.ts';
import type { ScriptedMiner } from './scripted-miner.ts';

type Lease = MessageOf<'lease'>;

/** One thread for every scripted onnx miner of the process; idle, it does not keep the process alive. */
const onnx = new OnnxThread();

export class OnnxRunnerForTests {
  /** Models fetched, by hash. */
  private readonly models = new Map<string, Promise<Uint8Array>>();
  modelFetches = 0;

  constructor(private readonly baseUrl: string) {}

  /** The model's bytes, fetched (and checked against its hash) on first use. */
  fetchModel(sha: string): Promise<Uint8Array> {
    let model = this.models.get(sha);
    if (!model) {
      model = (async () => {
        this.modelFetches++;
        const res = await fetch(new URL(`api/models/${sha}`, this.baseUrl));
        if (res.status !== 200) throw new Error(`model ${sha}: ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (createHash('sha256').update(bytes).digest('hex') !== sha) throw new Error(`model ${sha}: bytes do not match their hash`);
        return bytes;
      })();
      this.models.set(sha, model);
    }
    return model;
  }

  /** The lease's outputs, in the model's order, each flattened. */
  async outputs(lease: Lease): Promise<Float32Array[]> {
    const sha = String(lease.params.model);
    const model = this.fetchModel(sha);
    const inputNames = JSON.parse(String(lease.params.inputNames)) as string[];
    const outputNames = JSON.parse(String(lease.params.outputNames)) as string[];
    const feeds: OnnxTensors = inputNames.map((name, i) => {
      const tensor = lease.operands[`i${i}`];
      if (!tensor) throw new Error(`lease has no operand i${i}`);
      if (tensor.dtype === 'u8') {
        const normalize = parseNormalize(lease.params.normalize);
        if (!normalize.ok) throw new Error(`lease's u8 operand i${i}: ${normalize.error.message}`);
        return [name, { shape: tensor.shape, data: normalizeU8(tensor.data, tensor.shape, normalize.value) }];
      }
      return [name, { shape: tensor.shape, data: Float32Array.from(f32Values(tensor)) }];
    });
    const result = new Map(await onnx.run(sha, await model, feeds));
    return outputNames.map((name) => {
      const out = result.get(name);
      if (!out) throw new Error(`no float32 output ${name}`);
      return out.data;
    });
  }

  /**
   * Runs the lease honestly (or through `tamper`) and returns the coordinator's verdict: a receipt or a rejection.
   * A result held pending an audit waits here for its receipt, which comes only when an audit of this miner passes
   * (a new key's first two results are always audited): a miner that mines on past that uses runHeld.
   */
  async run(miner: ScriptedMiner, lease: Lease, tamper?: (outputs: Float32Array[]) => Float32Array[]): Promise<MessageOf<'receipt' | 'rejected'>> {
    await this.send(miner, lease, tamper);
    return miner.next('receipt', 'rejected');
  }

  /** Runs the lease and returns the first verdict on it, `pending` (credit held until an audit) included. */
  async runHeld(miner: ScriptedMiner, lease: Lease, tamper?: (outputs: Float32Array[]) => Float32Array[]): Promise<MessageOf<'receipt' | 'rejected' | 'pending'>> {
    await this.send(miner, lease, tamper);
    return miner.next('receipt', 'rejected', 'pending');
  }

  private async send(miner: ScriptedMiner, lease: Lease, tamper?: (outputs: Float32Array[]) => Float32Array[]): Promise<void> {
    const started = performance.now();
    let outputs = await this.outputs(lease);
    if (tamper) outputs = tamper(outputs);
    const gpuSeconds = Math.max(0.001, (performance.now() - started) / 1000);
    miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds, output: packResult(outputs) });
  }
}
