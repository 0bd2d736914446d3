// Settlement without any transport: a result is checked, verified by its kind, credited once, reflected in the
// miner's reputation and receipted, with the queue, jobs and a real SQLite ledger, and no WebRTC.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Jobs } from '../../../src/coordinator/jobs.ts';
import { LedgerError, openLedger, type Ledger } from '../../../src/coordinator/ledger/ledger.ts';
import { OperandStore } from '../../../src/coordinator/operand-store.ts';
import { REJECT_PENALTY } from '../../../src/coordinator/reputation.ts';
import { Scheduler } from '../../../src/coordinator/scheduler.ts';
import { settle, type Claimant, type SettlementContext } from '../../../src/coordinator/settle.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { toHex, verifyReceipt } from '../../../src/protocol/receipt.ts';
import { f32Tensor } from '../../../src/protocol/tensor.ts';
import { gemmKind, unitOperands, type GemmJob, type GemmUnit } from '../../../src/work/gemm/gemm.ts';
import type { AnyWorkKind } from '../../../src/work/kind.ts';
import { defaultKinds } from '../../../src/work/registry.ts';
import { matmulF32, randomMatrix, seededBytes } from '../../helpers/random.ts';

const MINER: Claimant = { sessionId: 's1', minerKey: toHex(new Uint8Array(32).fill(3)), minerKeyBytes: new Uint8Array(32).fill(3) };
const F32_MINER = { kinds: ['gemm'], precisions: ['f32'], features: [] };

describe('settlement', () => {
  let dir: string;
  let ledger: Ledger;
  let ctx: SettlementContext;
  let job: GemmJob;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-settle-'));
    ledger = await openLedger({ backend: 'sqlite', path: join(dir, 'ledger.sqlite') });
    const queue = new Scheduler();
    const jobs = new Jobs(queue, defaultKinds(), ledger, await OperandStore.open(dir));
    ctx = { queue, jobs, ledger, signingKey: await loadOrCreateSigningKey(dir), verify: { random: seededBytes(5), runtimes: {} } };
    const m = 300;
    const k = 40;
    const n = 20;
    const body = new Float32Array([...randomMatrix(m * k, 1), ...randomMatrix(k * n, 2)]);
    const created = gemmKind.createJob('job1', { m, n, k, precision: 'f32' }, new Uint8Array(body.buffer));
    if (!created.ok) throw new Error(created.error.message);
    job = created.value.job;
    await jobs.submit('owner', gemmKind as AnyWorkKind, { id: 'job1', ...created.value }, Date.now());
  });
  afterEach(async () => {
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  const leaseOne = async () => {
    const lease = await ctx.queue.lease(MINER.sessionId, Date.now(), F32_MINER);
    if (!lease) throw new Error('expected a lease');
    const unit = lease.unit as GemmUnit;
    const { a, b } = unitOperands(job, unit);
    return { lease, unit, honest: matmulF32(a, b, unit.rows, unit.depth, unit.cols) };
  };
  const claim = (leaseId: string, unit: GemmUnit, values: Float32Array, shape = [unit.rows, unit.cols]) =>
    ({ leaseId, unitId: unit.id, gpuSeconds: 0.01, output: f32Tensor(shape, values), leaseSentAtMs: Date.now() - 100 });

  it('credits an honest result once, with a receipt the coordinator signed for exactly its ops at its rate', async () => {
    const { lease, unit, honest } = await leaseOne();
    const settled = await settle(ctx, MINER, claim(lease.id, unit, honest));
    if (settled.type !== 'receipt') throw new Error(`not a receipt: ${JSON.stringify(settled.type)}`);
    expect(await verifyReceipt(settled.receipt)).toBe(true);
    expect(settled.receipt).toMatchObject({ unitId: unit.id, kind: 'gemm', ops: gemmKind.ops(unit), microCredits: gemmKind.ops(unit) / 1000n });
    expect(await ledger.balance(MINER.minerKey)).toBe(settled.receipt.microCredits);
    expect((await ledger.reputation(MINER.minerKey)).accepted).toBe(1);

    // Sent again (its receipt lost with the link): the same receipt, signed again from the ledger row, and no more credit.
    const replay = await settle(ctx, MINER, claim(lease.id, unit, honest));
    expect(replay).toEqual({ type: 'receipt', receipt: settled.receipt, again: true });
    expect(await ledger.balance(MINER.minerKey)).toBe(settled.receipt.microCredits);
    expect(await ledger.reputation(MINER.minerKey)).toMatchObject({ accepted: 1, rejected: 0 });
  });

  it('refuses as an offence another wallet key that sends a result for a unit already credited', async () => {
    const { lease, unit, honest } = await leaseOne();
    expect((await settle(ctx, MINER, claim(lease.id, unit, honest))).type).toBe('receipt');
    const other = { ...MINER, sessionId: 'session-2', minerKey: 'cd'.repeat(32), minerKeyBytes: new Uint8Array(32).fill(0xcd) };
    const stolen = await settle(ctx, other, claim(lease.id, unit, honest));
    expect(stolen).toMatchObject({ type: 'rejected', error: { code: 'unknown-lease' }, offence: true });
    expect(await ledger.balance(other.minerKey)).toBe(0n);
    expect((await ledger.totals()).units).toBe(1);
  });

  it('rejects a wrong, misshapen or implausibly timed result without credit, blames the miner and leases the unit again', async () => {
    for (const [make, code] of [
      [(h: Float32Array) => h.map((x, i) => (i === 7 ? x + 1 : x)), 'verification-failed'],
      [(h: Float32Array) => h.subarray(1), 'shape-mismatch'],
    ] as const) {
      const { lease, unit, honest } = await leaseOne();
      const values = make(honest);
      const shape = values.length === honest.length ? [unit.rows, unit.cols] : [values.length];
      const settled = await settle(ctx, MINER, claim(lease.id, unit, values, shape));
      expect(settled, code).toMatchObject({ type: 'rejected', error: { code }, offence: true });
      expect((await ctx.queue.lease('other', Date.now(), F32_MINER))?.unit.id).toBe(unit.id);
      await ctx.queue.releaseSession('other');
    }
    const { lease, unit, honest } = await leaseOne();
    const tooFast = await settle(ctx, MINER, { ...claim(lease.id, unit, honest), gpuSeconds: 0 });
    expect(tooFast).toMatchObject({ type: 'rejected', error: { code: 'implausible-claim' } });
    expect(await ledger.balance(MINER.minerKey)).toBe(0n);
    expect((await ledger.reputation(MINER.minerKey)).score).toBe(-3 * REJECT_PENALTY);
  });

  it('refuses a result for another miner\'s lease as an offence, and a lease that expired as bad luck', async () => {
    const { lease, unit, honest } = await leaseOne();
    const thief = { sessionId: 's2', minerKey: toHex(new Uint8Array(32).fill(4)), minerKeyBytes: new Uint8Array(32).fill(4) };
    expect(await settle(ctx, thief, claim(lease.id, unit, honest))).toMatchObject({ type: 'rejected', error: { code: 'unknown-lease' }, offence: true });
    expect((await ledger.reputation(thief.minerKey)).rejected).toBe(1);
    await ctx.queue.expire(Date.now() + 3_600_000);
    expect(await settle(ctx, MINER, claim(lease.id, unit, honest))).toMatchObject({ type: 'rejected', error: { code: 'lease-expired' }, offence: false });
    expect((await ledger.reputation(MINER.minerKey)).rejected).toBe(0);
  });

  it('says a storage failure plainly, pays nothing, blames no one, and leases the unit again', async () => {
    const { lease, unit, honest } = await leaseOne();
    const failing: Ledger = Object.create(ledger, {
      credit: { value: async () => { throw new LedgerError('storage-full', 'the disk is full'); } },
    });
    const settled = await settle({ ...ctx, ledger: failing, jobs: new Jobs(ctx.queue, defaultKinds(), failing, await OperandStore.open(dir)) }, MINER, claim(lease.id, unit, honest));
    expect(settled).toMatchObject({ type: 'rejected', error: { code: 'internal', message: 'the disk is full' }, offence: false });
    expect(await ledger.balance(MINER.minerKey)).toBe(0n);
    expect((await ctx.queue.lease('other', Date.now(), F32_MINER))?.unit.id).toBe(unit.id);
  });
  it('does not lease again a unit credited while its lease ran out; the miner it went out to again is told, without blame', async () => {
    const { lease, unit, honest } = await leaseOne();
    // The deadline passes while the result is stored, and the unit goes out again to another miner meanwhile.
    let second: Awaited<ReturnType<typeof ctx.queue.lease>>;
    const slow: Ledger = Object.create(ledger, {
      credit: { value: async (...args: Parameters<Ledger['credit']>) => {
        await ctx.queue.expire(Date.now() + 3_600_000);
        second = await ctx.queue.lease('other', Date.now(), F32_MINER);
        return ledger.credit(...args);
      } },
    });
    const jobs = new Jobs(ctx.queue, defaultKinds(), slow, await OperandStore.open(dir));
    expect(await settle({ ...ctx, ledger: slow, jobs }, MINER, claim(lease.id, unit, honest))).toMatchObject({ type: 'receipt' });
    expect(second?.unit.id).toBe(unit.id);
    // Done and paid once: neither waiting nor leased; the other miner's result is refused as bad luck, not credited.
    expect(await ctx.queue.unitCounts('job1')).toMatchObject({ leased: 0 });
    expect((await ctx.queue.lease('third', Date.now(), F32_MINER))?.unit.id).not.toBe(unit.id);
    const other = { ...MINER, sessionId: 'other', minerKey: 'ab'.repeat(32) };
    expect(await settle(ctx, other, claim(second?.id ?? '', unit, honest))).toMatchObject({ type: 'rejected', error: { code: 'lease-expired' }, offence: false });
  });

  describe('a span (the job\'s two tiles of its one column, leased as one)', () => {
    const leaseSpan = async () => {
      const lease = await ctx.queue.lease(MINER.sessionId, Date.now(), F32_MINER, 2);
      if (!lease?.parts) throw new Error('expected a span');
      const unit = lease.unit as GemmUnit;
      const { a, b } = unitOperands(job, unit);
      return { lease, unit, parts: lease.parts.map((part) => part.id), honest: matmulF32(a, b, unit.rows, unit.depth, unit.cols) };
    };
    const withLedger = async (failing: Ledger): Promise<SettlementContext> =>
      ({ ...ctx, ledger: failing, jobs: new Jobs(ctx.queue, defaultKinds(), failing, await OperandStore.open(dir)) });

    it('keeps the parts stored before a storage failure credited and receipted, and leases the rest again', async () => {
      const { lease, unit, parts, honest } = await leaseSpan();
      let credits = 0;
      const failing: Ledger = Object.create(ledger, {
        credit: { value: async (...args: Parameters<Ledger['credit']>) => {
          if (credits++ > 0) throw new LedgerError('storage-full', 'the disk is full');
          return ledger.credit(...args);
        } },
      });
      const settled = await settle(await withLedger(failing), MINER, claim(lease.id, unit, honest));
      if (settled.type !== 'receipts') throw new Error(`not receipts: ${settled.type}`);
      expect(settled.receipts.map((r) => r.unitId)).toEqual([parts[0]]);
      // The part left is named, so that the miner stops waiting for its receipt; no blame.
      expect(settled.refusedParts).toEqual([{ unitId: parts[1], error: { code: 'internal', message: expect.stringMatching(/disk is full/) } }]);
      expect(await ledger.balance(MINER.minerKey)).toBe(settled.receipts[0].microCredits);
      // Sent again (its link dropped before the verdicts): the stored part's receipt again, no credit, and the other
      // part refused without blame, so that the page stops waiting for it.
      const again = await settle(ctx, MINER, { ...claim(lease.id, unit, honest), parts });
      if (again.type !== 'receipts') throw new Error(`not receipts: ${again.type}`);
      expect(again).toMatchObject({ again: true, receipts: [{ unitId: parts[0] }], refusedParts: [{ unitId: parts[1], error: { code: 'lease-expired' } }] });
      expect(await ledger.balance(MINER.minerKey)).toBe(settled.receipts[0].microCredits);
      expect(await ctx.queue.unitCounts('job1')).toEqual({ waiting: 1, leased: 0, held: 0 });
      expect((await ctx.queue.lease('other', Date.now(), F32_MINER, 2))?.unit.id).toBe(parts[1]);
    });

    it('does not lease again a part credited while its span\'s lease ran out', async () => {
      const { lease, unit, parts, honest } = await leaseSpan();
      // The deadline passes while the parts are being stored (a remote ledger, one transaction per part).
      const slow: Ledger = Object.create(ledger, {
        credit: { value: async (...args: Parameters<Ledger['credit']>) => {
          await ctx.queue.expire(Date.now() + 3_600_000);
          return ledger.credit(...args);
        } },
      });
      const settled = await settle(await withLedger(slow), MINER, claim(lease.id, unit, honest));
      if (settled.type !== 'receipts') throw new Error(`not receipts: ${settled.type}`);
      expect(settled.receipts.map((r) => r.unitId)).toEqual(parts);
      // Credited and paid: the job has their results, and no honest miner is leased them to compute for nothing.
      expect(await ctx.queue.unitCounts('job1')).toEqual({ waiting: 0, leased: 0, held: 0 });
      expect(await ctx.queue.lease('other', Date.now(), F32_MINER, 2)).toBeUndefined();
      expect((await ctx.queue.job('job1'))?.output).not.toBeNull();
    });
  });
});
