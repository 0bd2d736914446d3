// Sampled audits of onnx results through the real stack (scripted miners running onnxruntime-node over real WebRTC,
// a real SQLite ledger): credits pending until an audit passes, a cheat that built up pending credit forfeits all of
// it, and a job whose last units are held by a miner that left (or in its bond) still finishes. The coordinator's
// random source is steered by the test: each draw either audits (p = 1 always does) or not, so that which result is
// audited is known.
import { createRequire } from 'node:module';
import type * as OrtNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageOf } from '../../src/miner/coordinator-link.ts';
import { exportPublicKey, generateSigningKeys, toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { f32Values } from '../../src/protocol/tensor.ts';
import { readNpz, writeNpz } from '../../src/work/onnx/npz.ts';
import { MICRO_CREDITS_PER_GIGA_OP, packResult } from '../../src/work/onnx/onnx.ts';
import { microCreditsFor } from '../../src/work/kind.ts';
import { mlpModel, seeded } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_OPERATOR_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;

// 256 -> 2048 -> 256 (2.1 MFLOP a sample): a unit holds 1903 samples.
const IN = 256;
const HIDDEN = 2048;
const OUT = 256;
const UNIT_SAMPLES = 1903;
const OPS_PER_SAMPLE = 2n * BigInt(IN * HIDDEN) + BigInt(HIDDEN) * 2n + 2n * BigInt(HIDDEN * OUT) + BigInt(OUT) * 2n;

type Lease = MessageOf<'lease'>;
type Verdict = MessageOf<'receipt' | 'rejected' | 'pending'>;

describe('onnx audits', () => {
  let stack: TestStack;
  let model: Uint8Array<ArrayBuffer>;
  let sha = '';
  /** Whether the coordinator's next audit draws audit: all-zero bytes are the smallest draw, all-ones the largest. */
  let auditEveryResult = false;
  const miners: ScriptedMiner[] = [];
  const runner = { current: undefined as OnnxRunnerForTests | undefined };

  beforeAll(async () => {
    stack = await startStack({ maxModelBytes: 8 * 1024 * 1024, random: (into) => into.fill(auditEveryResult ? 0 : 255) });
    model = mlpModel(IN, HIDDEN, OUT, 3);
    const res = await api(stack.url, 'models', { method: 'POST', body: model });
    sha = (await res.json()).id;
    runner.current = new OnnxRunnerForTests(stack.url);
  }, 60_000);
  afterAll(async () => {
    for (const miner of miners) miner.close();
    await stack.stop();
  });

  const connect = async (keys?: CryptoKeyPair) => {
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(keys, undefined, ['onnx']);
    return miner;
  };
  const honestOutputs = (lease: Lease) => {
    if (!runner.current) throw new Error('no runner');
    return runner.current.outputs(lease);
  };
  /** Sends these outputs for the lease and waits for the verdict on them, `pending` included. */
  const send = async (miner: ScriptedMiner, lease: Lease, outputs: Float32Array[]): Promise<Verdict> => {
    miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output: packResult(outputs) });
    return miner.next('receipt', 'rejected', 'pending');
  };
  const submit = async (batch: number, seed: number) => {
    const x = seeded(batch * IN, seed);
    const res = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body: writeNpz(new Map([['x', { shape: [batch, IN], data: x }]])) });
    expect(res.status).toBe(201);
    return { id: (await res.json()).id as string, x };
  };
  /** The job's assembled outputs match onnxruntime-node's run of the whole batch within the model's tolerance. */
  const expectCorrectOutput = async (jobId: string, x: Float32Array, batch: number) => {
    const result = await api(stack.url, `jobs/${jobId}/result`);
    expect(result.status).toBe(200);
    const outputs = readNpz(new Uint8Array(await result.arrayBuffer()), 1 << 27);
    if (!outputs.ok) throw new Error(outputs.error.message);
    const session = await ort.InferenceSession.create(model);
    const reference = await session.run({ x: new ort.Tensor('float32', x, [batch, IN]) });
    for (const name of ['prob', 'logits']) {
      const want = reference[name].data as Float32Array;
      const got = outputs.value.get(name)?.data ?? new Float32Array();
      expect(got.length).toBe(want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-4 + 1e-3 * Math.abs(want[i])));
      expect(worst).toBeLessThanOrEqual(1);
    }
  };
  const unitCredits = (samples: number) => microCreditsFor(OPS_PER_SAMPLE * BigInt(samples), MICRO_CREDITS_PER_GIGA_OP);

  it('holds credits as pending after a good record, and a cheat who built some up forfeits all of it; honest miners finish the job', async () => {
    const BATCH = 10 * UNIT_SAMPLES;
    const job = await submit(BATCH, 21);
    const other = await ort.InferenceSession.create(mlpModel(IN, HIDDEN, OUT, 4));
    const cheats: [string, (outs: Float32Array[], lease: Lease) => Promise<Float32Array[]>, boolean?][] = [
      // Within every output's range (a Sigmoid's [0, 1]): only a re-run tells.
      ['perturbed by 1%', async (outs) => outs.map((o) => o.map((v) => v * 0.99))],
      ['zeros', async (outs) => outs.map((o) => new Float32Array(o.length))],
      ['another model\'s outputs', async (_outs, lease) => {
        const x = lease.operands.i0;
        if (!x) throw new Error('no input');
        const run = await other.run({ x: new ort.Tensor('float32', Float32Array.from(f32Values(x)), x.shape) });
        return [run.prob.data as Float32Array, run.logits.data as Float32Array];
      }],
      // A Sigmoid's output above 1: the cheap checks catch it without a re-run, and that forfeits the bond too.
      ['probabilities above 1', async (outs) => [outs[0].map(() => 2), outs[1]], true],
    ];
    let paid = 0n;
    for (const [how, tamper, cheapCheckCatches = false] of cheats) {
      const cheatKeys = await generateSigningKeys();
      const cheat = await connect(cheatKeys);
      const cheatKey = toHex(cheat.minerKey);
      // A new key is audited on every unit: its first two results are paid at once.
      for (let i = 0; i < 2; i++) {
        const lease = await cheat.lease();
        const verdict = await send(cheat, lease, await honestOutputs(lease));
        if (verdict.type !== 'receipt') throw new Error(`${how}: expected a receipt, got ${JSON.stringify(verdict.type)}`);
        expect(await verifyReceipt(verdict.receipt)).toBe(true);
        paid += verdict.receipt.microCredits;
      }
      // With two audits passed the rate is 2/3, and this draw does not audit: the credit is held, not paid.
      const honestLease = await cheat.lease();
      const held = await send(cheat, honestLease, await honestOutputs(honestLease));
      expect(held).toMatchObject({ type: 'pending', unitId: honestLease.unitId, kind: 'onnx', ops: OPS_PER_SAMPLE * BigInt(UNIT_SAMPLES), microCredits: unitCredits(UNIT_SAMPLES) });
      const balanceBefore = await stack.ledger.balance(cheatKey);
      expect((await stack.ledger.pendingCredits({ minerKey: cheatKey })).map((p) => p.unitId)).toEqual([honestLease.unitId]);

      // Now it cheats, passes the cheap checks, and this result is audited.
      const cheatLease = await cheat.lease();
      auditEveryResult = true;
      const verdict = await send(cheat, cheatLease, await tamper(await honestOutputs(cheatLease), cheatLease));
      auditEveryResult = false;
      expect(verdict, how).toMatchObject({ type: 'rejected', unitId: cheatLease.unitId, code: 'verification-failed' });
      const notice = await cheat.next('forfeited');
      // A result that passed the cheap checks was held, and is forfeited with the rest; one that failed them never was.
      const forfeitedUnits = cheapCheckCatches ? [honestLease.unitId] : [honestLease.unitId, cheatLease.unitId];
      expect(notice.unitIds.sort(), how).toEqual(forfeitedUnits.sort());
      expect(notice.microCredits).toBe(BigInt(forfeitedUnits.length) * unitCredits(UNIT_SAMPLES));
      expect(await stack.ledger.forfeited(cheatKey)).toBe(notice.microCredits);
      expect(await stack.ledger.pendingCredits({ minerKey: cheatKey })).toEqual([]);
      expect(await stack.ledger.balance(cheatKey)).toBe(balanceBefore);
      expect(await stack.ledger.auditsPassed(cheatKey)).toBe(0);
      expect((await stack.ledger.reputation(cheatKey)).rejected).toBe(1);
      cheat.close();
      // Back on a new connection, as after a dropped link, it asks after its pending credits: told they are forfeited.
      const back = await connect(cheatKeys);
      back.send({ type: 'pending-check', unitIds: [honestLease.unitId, cheatLease.unitId] });
      const again = await back.next('forfeited');
      expect(again.unitIds.sort(), how).toEqual(forfeitedUnits.sort());
      expect(again.microCredits).toBe(notice.microCredits);
      back.close();
    }

    // The forfeited units went back in the queue: an honest miner does them and the job comes out right.
    const honest = await connect();
    for (let i = 0; i < 2; i++) {
      const lease = await honest.lease();
      const verdict = await send(honest, lease, await honestOutputs(lease));
      if (verdict.type !== 'receipt') throw new Error(`honest: expected a receipt, got ${verdict.type}`);
      paid += verdict.receipt.microCredits;
    }
    await waitForJob(stack.url, job.id);
    await expectCorrectOutput(job.id, job.x, BATCH);
    // Paid: exactly each unit once, at ops x rate; the forfeited credits never.
    expect(paid).toBe(10n * unitCredits(UNIT_SAMPLES));
    expect(await stack.ledger.totals()).toEqual({ units: 10, ops: OPS_PER_SAMPLE * BigInt(BATCH), microCredits: paid });
    // The operator sees the same: four failed audits (one by the cheap checks), seven units' credits forfeited.
    const metrics = await (await fetch(new URL('metrics', stack.url), { headers: { authorization: `Bearer ${TEST_OPERATOR_KEY}` } })).text();
    expect(metrics).toContain('ergon_audits_total{kind="onnx",outcome="failed"} 4');
    expect(metrics).toContain(`ergon_credits_forfeited_microcredits_total{kind="onnx"} ${7n * unitCredits(UNIT_SAMPLES)}`);
    expect(metrics).toContain(`ergon_credits_issued_microcredits_total{kind="onnx"} ${paid}`);
  }, 300_000);

  it('finishes a job whose last unit is held for a miner that went away: the coordinator audits it without the miner', async () => {
    const BATCH = 3 * UNIT_SAMPLES + 50;
    const job = await submit(BATCH, 22);
    const keys = await generateSigningKeys();
    const key = toHex(await exportPublicKey(keys.publicKey));
    const leaving = await connect(keys);
    // Two units audited and paid: a record of two passed audits, and room for two leases at once.
    for (let i = 0; i < 2; i++) {
      const lease = await leaving.lease();
      expect((await send(leaving, lease, await honestOutputs(lease))).type).toBe('receipt');
    }
    const heldLease = await leaving.lease();
    const abandoned = await leaving.lease();
    expect(await runner.current?.runHeld(leaving, heldLease)).toMatchObject({ type: 'pending', unitId: heldLease.unitId });
    // It leaves with its pending credit and a lease it never returns.
    leaving.close();
    expect((await stack.ledger.pendingCredits({ minerKey: key })).map((p) => p.unitId)).toEqual([heldLease.unitId]);

    // Another miner does the abandoned unit; then nothing is waiting or leased, and the coordinator audits the held
    // unit by itself, with no miner to ask.
    const other = await connect();
    const lease = await other.lease();
    expect(lease.unitId).toBe(abandoned.unitId);
    expect((await send(other, lease, await honestOutputs(lease))).type).toBe('receipt');
    await waitForJob(stack.url, job.id);
    await expectCorrectOutput(job.id, job.x, BATCH);
    expect(await stack.ledger.pendingCredits({ minerKey: key })).toEqual([]);
    expect(await stack.ledger.balance(key)).toBe(3n * unitCredits(UNIT_SAMPLES));
    expect(await stack.ledger.auditsPassed(key)).toBe(3);

    // The audit's receipt went to no one. The miner comes back and asks after its pending credit: it gets the
    // receipt, signed again, and nothing more is paid. Asking again at once on the same connection is refused.
    const back = await connect(keys);
    back.send({ type: 'pending-check', unitIds: [heldLease.unitId, abandoned.unitId, 'no-such-unit', heldLease.unitId] });
    const { receipt } = await back.next('receipt');
    expect(receipt.unitId).toBe(heldLease.unitId);
    expect(toHex(receipt.minerKey)).toBe(key);
    expect(await verifyReceipt(receipt)).toBe(true);
    back.send({ type: 'pending-check', unitIds: [heldLease.unitId] });
    expect(await back.next('error')).toMatchObject({ code: 'rate-limited', message: expect.stringMatching(/at most once every 30 s/) });
    expect(await stack.ledger.balance(key)).toBe(3n * unitCredits(UNIT_SAMPLES));
    // Another key naming that unit learns nothing of it: the only receipt it gets is for its own unit, asked after.
    other.send({ type: 'pending-check', unitIds: [heldLease.unitId, lease.unitId] });
    expect((await other.next('receipt')).receipt.unitId).toBe(lease.unitId);
  }, 300_000);

  it('keeps a held unit held across a restart, neither lost nor leased again, and pays it at its miner\'s next passed audit', async () => {
    const BATCH = 3 * UNIT_SAMPLES + 50;
    const job = await submit(BATCH, 24);
    const keys = await generateSigningKeys();
    const key = toHex(await exportPublicKey(keys.publicKey));
    const before = await connect(keys);
    for (let i = 0; i < 2; i++) {
      const lease = await before.lease();
      expect((await send(before, lease, await honestOutputs(lease))).type).toBe('receipt');
    }
    const heldLease = await before.lease();
    const lastLease = await before.lease();
    expect((await send(before, heldLease, await honestOutputs(heldLease))).type).toBe('pending');
    for (const miner of miners.splice(0)) miner.close();
    await stack.close();
    stack = await startStack({ dataDir: stack.dataDir, maxModelBytes: 8 * 1024 * 1024, random: (into) => into.fill(auditEveryResult ? 0 : 255) });
    runner.current = new OnnxRunnerForTests(stack.url);

    const after = await connect(keys);
    const lease = await after.lease();
    expect(lease.unitId).toBe(lastLease.unitId);
    // Held too: the job's every unit left is held, so the coordinator audits each of them (the first audit to pass
    // keeps the other in the miner's bond), and both are settled.
    expect(await send(after, lease, await honestOutputs(lease))).toMatchObject({ type: 'pending', unitId: lease.unitId });
    const receipts = [await after.next('receipt'), await after.next('receipt')];
    expect(receipts.map((r) => r.receipt.unitId).sort()).toEqual([heldLease.unitId, lastLease.unitId].sort());
    for (const { receipt } of receipts) expect(await verifyReceipt(receipt)).toBe(true);
    await waitForJob(stack.url, job.id);
    await expectCorrectOutput(job.id, job.x, BATCH);
    expect(await stack.ledger.balance(key)).toBe(3n * unitCredits(UNIT_SAMPLES) + unitCredits(50));
  }, 300_000);
});
