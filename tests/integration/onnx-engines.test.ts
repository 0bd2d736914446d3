// The engine a result names, through the real stack (scripted miners running onnxruntime-node over real WebRTC, a
// real SQLite ledger): the receipt's kind says it, a claimed engine earns no more than another (the coordinator
// cannot see which engine ran a unit, so onnx pays every engine the same per op), and an engine outside the
// protocol's list is a malformed message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageOf } from '../../src/miner/coordinator-link.ts';
import type { Engine } from '../../src/protocol/messages.ts';
import { verifyReceipt } from '../../src/protocol/receipt.ts';
import { writeNpz } from '../../src/work/onnx/npz.ts';
import { MICRO_CREDITS_PER_GIGA_OP, packResult } from '../../src/work/onnx/onnx.ts';
import { microCreditsFor } from '../../src/work/kind.ts';
import { mlpModel, seeded } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, waitForJob, type TestStack } from '../helpers/stack.ts';

// 256 -> 2048 -> 256 (2.1 MFLOP a sample): a unit holds 1903 samples. A new miner's every result is audited.
const IN = 256;
const HIDDEN = 2048;
const OUT = 256;
const UNIT_SAMPLES = 1903;
const OPS_PER_SAMPLE = 2n * BigInt(IN * HIDDEN) + BigInt(HIDDEN) * 2n + 2n * BigInt(HIDDEN * OUT) + BigInt(OUT) * 2n;

type Lease = MessageOf<'lease'>;

describe('onnx engines', () => {
  let stack: TestStack;
  let sha = '';
  let runner: OnnxRunnerForTests;
  const miners: ScriptedMiner[] = [];
  let auditEveryResult = true;

  beforeAll(async () => {
    // All-zero bytes are the smallest draw (audit), all-ones the largest (hold).
    stack = await startStack({ maxModelBytes: 8 * 1024 * 1024, random: (into) => into.fill(auditEveryResult ? 0 : 255) });
    const res = await api(stack.url, 'models', { method: 'POST', body: mlpModel(IN, HIDDEN, OUT, 5) });
    sha = (await res.json()).id;
    runner = new OnnxRunnerForTests(stack.url);
  }, 60_000);
  afterAll(async () => {
    for (const miner of miners) miner.close();
    await stack.stop();
  });

  const connect = async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(undefined, undefined, ['onnx']);
    return miner;
  };
  const submit = async (samples: number, seed: number): Promise<string> => {
    const res = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body: writeNpz(new Map([['x', { shape: [samples, IN], data: seeded(samples * IN, seed) }]])) });
    expect(res.status).toBe(201);
    return (await res.json()).id;
  };
  const sendResult = async (miner: ScriptedMiner, lease: Lease, engine: Engine | undefined) => {
    const output = packResult(await runner.outputs(lease));
    miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output, ...(engine ? { engine } : {}) });
    return miner.next('receipt', 'rejected', 'pending');
  };

  it('names the claimed engine in the receipt and pays every engine the same per op, whatever ran the unit', async () => {
    const id = await submit(3 * UNIT_SAMPLES, 31);
    // All three ran onnxruntime-node on the CPU: one claims WebGPU, one WASM, one says nothing (an older miner).
    const receipts = [];
    for (const engine of ['webgpu', 'wasm', undefined] as const) {
      const miner = await connect();
      const lease = await miner.lease();
      const verdict = await sendResult(miner, lease, engine);
      if (verdict.type !== 'receipt') throw new Error(`${engine}: expected a receipt, got ${JSON.stringify(verdict)}`);
      expect(await verifyReceipt(verdict.receipt)).toBe(true);
      receipts.push({ engine, receipt: verdict.receipt, samples: lease.operands.i0?.shape[0] ?? 0 });
    }
    expect(receipts.map((r) => r.receipt.kind)).toEqual(['onnx-webgpu', 'onnx', 'onnx']);
    for (const { receipt, samples } of receipts) {
      expect(receipt.ops).toBe(OPS_PER_SAMPLE * BigInt(samples));
      // Claiming WebGPU earns exactly what the same ops earn on WASM: no more for a claim nobody can check.
      expect(receipt.microCredits).toBe(microCreditsFor(receipt.ops, MICRO_CREDITS_PER_GIGA_OP));
    }
    expect(await waitForJob(stack.url, id)).toMatchObject({ status: 'done' });
  }, 120_000);

  it('keeps the claimed engine\'s receipt kind with a credit held pending an audit', async () => {
    // Four units: the held third is not the job's last, which the coordinator would audit at once without the miner.
    const id = await submit(4 * UNIT_SAMPLES, 32);
    const miner = await connect();
    // A new key is audited on every unit: two results paid at once, after which this draw holds the third.
    for (let i = 0; i < 2; i++) expect((await sendResult(miner, await miner.lease(), 'webgpu')).type).toBe('receipt');
    auditEveryResult = false;
    try {
      const lease = await miner.lease();
      expect(await sendResult(miner, lease, 'webgpu')).toMatchObject({ type: 'pending', unitId: lease.unitId, kind: 'onnx-webgpu' });
      const pending = await stack.ledger.pendingCredits({ minerKey: Buffer.from(miner.minerKey).toString('hex') });
      expect(pending.map((p) => [p.unitId, p.receiptKind])).toEqual([[lease.unitId, 'onnx-webgpu']]);
    } finally {
      auditEveryResult = true;
    }
    expect((await sendResult(miner, await miner.lease(), 'wasm')).type).toBe('receipt');
    expect(await waitForJob(stack.url, id)).toMatchObject({ status: 'done' });
  }, 120_000);

  it('refuses a result naming an engine outside the protocol\'s list as malformed, without credit', async () => {
    const miner = await connect();
    const id = await submit(20, 33);
    const lease = await miner.lease();
    const output = packResult(await runner.outputs(lease));
    miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output, engine: 'cuda' } as unknown as Parameters<ScriptedMiner['send']>[0]);
    expect((await miner.next('error')).code).toBe('malformed-message');
    expect(await stack.ledger.balance(Buffer.from(miner.minerKey).toString('hex'))).toBe(0n);
    // The same result, well formed, is then credited: the session goes on.
    const verdict = await sendResult(miner, lease, 'wasm');
    expect(verdict.type).toBe('receipt');
    await waitForJob(stack.url, id);
  }, 120_000);
});
