// An onnx miner scripted in Node: fetches the lease's model from the coordinator's origin by hash (checked), runs it
// with onnxruntime-node, and returns the outputs packed as the kind expects; or, as a test says, something else.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as OrtNode from 'onnxruntime-node';
import { f32Values } from '../../src/protocol/tensor.ts';
import { normalizeU8, parseNormalize } from '../../src/work/onnx/normalize.ts';
import { packResult } from '../../src/work/onnx/onnx.ts';
import type { MessageOf } from '../../src/miner/coordinator-link.ts';
import type { ScriptedMiner } from './scripted-miner.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;
type Lease = MessageOf<'lease'>;

export class OnnxRunnerForTests {
  private readonly sessions = new Map<string, Promise<OrtNode.InferenceSession>>();
  modelFetches = 0;

  constructor(private readonly baseUrl: string) {}

  /**
   * The model's session, fetched and made on first use. Making one blocks the event loop for a moment (onnxruntime
   * loads the graph on the main thread): a test whose coordinator shares its process may make them before miners connect.
   */
  session(sha: string): Promise<OrtNode.InferenceSession> {
    let session = this.sessions.get(sha);
    if (!session) {
      session = (async () => {
        this.modelFetches++;
        const res = await fetch(new URL(`api/models/${sha}`, this.baseUrl));
        if (res.status !== 200) throw new Error(`model ${sha}: ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (createHash('sha256').update(bytes).digest('hex') !== sha) throw new Error(`model ${sha}: bytes do not match their hash`);
        return ort.InferenceSession.create(bytes);
      })();
      this.sessions.set(sha, session);
    }
    return session;
  }

  /** The lease's outputs, in the model's order, each flattened. */
  async outputs(lease: Lease): Promise<Float32Array[]> {
    const session = this.session(String(lease.params.model));
    const inputNames = JSON.parse(String(lease.params.inputNames)) as string[];
    const outputNames = JSON.parse(String(lease.params.outputNames)) as string[];
    const feeds: Record<string, OrtNode.Tensor> = {};
    inputNames.forEach((name, i) => {
      const tensor = lease.operands[`i${i}`];
      if (!tensor) throw new Error(`lease has no operand i${i}`);
      if (tensor.dtype === 'u8') {
        const normalize = parseNormalize(lease.params.normalize);
        if (!normalize.ok) throw new Error(`lease's u8 operand i${i}: ${normalize.error.message}`);
        feeds[name] = new ort.Tensor('float32', normalizeU8(tensor.data, tensor.shape, normalize.value), tensor.shape);
        return;
      }
      feeds[name] = new ort.Tensor('float32', Float32Array.from(f32Values(tensor)), tensor.shape);
    });
    const result = await (await session).run(feeds);
    return outputNames.map((name) => {
      const out = result[name];
      if (!out || !(out.data instanceof Float32Array)) throw new Error(`no float32 output ${name}`);
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
