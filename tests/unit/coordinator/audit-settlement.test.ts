// Settlement of a kind that audits, without any transport: results of one miner are held and audited in its turn, so
// an audit that passes never pays a result whose own audit is still running and fails; an audit that passes keeps
// the miner's newest credits pending as its standing bond, which a cheat caught next forfeits; and a job whose tail
// is held in a bond is audited to the end. The bond's tests run on SQLite and on a real PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_FLOOR, auditProbability, bondUnits } from '../../../src/coordinator/audits.ts';
import { Jobs } from '../../../src/coordinator/jobs.ts';
import { openLedger, type Ledger } from '../../../src/coordinator/ledger/ledger.ts';
import { OperandStore } from '../../../src/coordinator/operand-store.ts';
import { Scheduler } from '../../../src/coordinator/scheduler.ts';
import { settle, type Claimant, type Settlement, type SettlementContext } from '../../../src/coordinator/settle.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { toHex } from '../../../src/protocol/receipt.ts';
import { f32Tensor } from '../../../src/protocol/tensor.ts';
import { microCreditsFor, type AnyWorkKind } from '../../../src/work/kind.ts';
import { kindRegistry } from '../../../src/work/registry.ts';
import { dotKind, dots, DOTS_PER_UNIT, type DotJob, type DotUnit } from '../../helpers/dot-kind.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../../helpers/postgres.ts';

const MINER: Claimant = { sessionId: 's1', minerKey: toHex(new Uint8Array(32).fill(9)), minerKeyBytes: new Uint8Array(32).fill(9) };
const DOT_MINER = { kinds: ['dot'], precisions: ['f32'], features: [] };

/** The dot kind with its exact check as an audit that takes a while for the first unit, and no cheap check. */
const auditedDots = {
  ...dotKind,
  async verify() {
    return { ok: true as const };
  },
  async audit(ctx: unknown, job: DotJob, unit: DotUnit, result: Float32Array) {
    if (unit.first === 0) await new Promise((resolve) => setTimeout(resolve, 200));
    return dotKind.verify(ctx as never, job, unit, result);
  },
} as unknown as AnyWorkKind;

describe('settlement with audits', () => {
  let dir: string;
  let ledger: Ledger;
  let ctx: SettlementContext;
  let job: DotJob;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-audit-settle-'));
    ledger = await openLedger({ backend: 'sqlite', path: join(dir, 'ledger.sqlite') });
    const queue = new Scheduler();
    const jobs = new Jobs(queue, kindRegistry([auditedDots]), ledger, await OperandStore.open(dir));
    // Every draw audits.
    ctx = { queue, jobs, ledger, signingKey: await loadOrCreateSigningKey(dir), verify: { random: (into) => into.fill(0), runtimes: {} } };
    const x = new Float32Array(32).map((_, i) => (i % 7) - 3);
    const y = new Float32Array(32).map((_, i) => (i % 5) - 2);
    job = { id: 'job1', count: 8, dim: 4, x, y };
    await jobs.submit('owner', auditedDots, { id: 'job1', job, operands: [new Uint8Array(x.buffer), new Uint8Array(y.buffer)] }, Date.now());
  });
  afterEach(async () => {
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('forfeits a wrong result whose audit is slow, even when the miner\'s next result passes its audit meanwhile', async () => {
    const leases = [await ctx.queue.lease('s1', Date.now(), DOT_MINER), await ctx.queue.lease('s1', Date.now(), DOT_MINER)];
    const honest = (unit: DotUnit) => dots(job.x.subarray(unit.first * 4), job.y.subarray(unit.first * 4), unit.rows, unit.dim);
    const claim = (i: number, values: Float32Array) => {
      const lease = leases[i];
      if (!lease) throw new Error('expected a lease');
      return { leaseId: lease.id, unitId: lease.unit.id, gpuSeconds: 0.01, output: f32Tensor([values.length], values), leaseSentAtMs: Date.now() - 100 };
    };
    const [cheatUnit, honestUnit] = leases.map((l) => l?.unit as DotUnit);
    const wrong = honest(cheatUnit).map((v) => v + 1);
    const [cheat, good] = await Promise.all([settle(ctx, MINER, claim(0, wrong)), settle(ctx, MINER, claim(1, honest(honestUnit)))]);
    expect(cheat).toMatchObject({ type: 'rejected', error: { code: 'verification-failed' }, forfeited: { unitIds: [cheatUnit.id] } });
    if (good.type !== 'settled') throw new Error(`expected the honest result settled, got ${good.type}`);
    expect(good.receipts.map((r) => r.unitId)).toEqual([honestUnit.id]);
    const pay = microCreditsFor(dotKind.ops(honestUnit), 3_000_000n);
    expect(await ledger.balance(MINER.minerKey)).toBe(pay);
    expect(await ledger.forfeited(MINER.minerKey)).toBe(microCreditsFor(dotKind.ops(cheatUnit), 3_000_000n));
    // The forfeited unit is queued again, for anyone.
    expect((await ctx.queue.lease('s2', Date.now(), DOT_MINER))?.unit.id).toBe(cheatUnit.id);
  });
});

/** The dot kind with no cheap check and its exact check as the audit: a wrong result is caught only when audited. */
const dotsAuditedOnly = {
  ...dotKind,
  async verify() {
    return { ok: true as const };
  },
  audit: (ctx: unknown, job: DotJob, unit: DotUnit, result: Float32Array) => dotKind.verify(ctx as never, job, unit, result),
} as unknown as AnyWorkKind;

/** 250-long vectors: 2 x 4 x 250 = 2000 ops a unit, 6 micro-credits at the dot kind's rate, exactly. */
const DIM = 250;
const RATE = 3_000_000n;
const UNIT_PAY = microCreditsFor(2n * BigInt(DOTS_PER_UNIT * DIM), RATE);

let server: TestPostgres | undefined;
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const backends: { name: string; open: (dir: string) => Promise<Ledger> }[] = [
  { name: 'sqlite', open: (dir) => openLedger({ backend: 'sqlite', path: join(dir, 'ledger.sqlite') }) },
];
if (!postgresMissing) {
  backends.push({
    name: 'postgres',
    open: async () => {
      if (!server) throw new Error('PostgreSQL did not start');
      return openLedger({ backend: 'postgres', url: await server.createDatabase() });
    },
  });
}

describe.each(backends)('the standing bond ($name ledger)', ({ open }) => {
  let dir: string;
  let ledger: Ledger;
  let ctx: SettlementContext;
  /** Whether the coordinator's next draw audits: all-zero bytes are the smallest draw, all-ones the largest (never below p < 1). */
  let auditNext = false;
  /** Every unit receipted, once each: what the ledger's totals must equal, exactly. */
  let paidUnits: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-bond-'));
    ledger = await open(dir);
    const queue = new Scheduler();
    const jobs = new Jobs(queue, kindRegistry([dotsAuditedOnly]), ledger, await OperandStore.open(dir));
    ctx = { queue, jobs, ledger, signingKey: await loadOrCreateSigningKey(dir), verify: { random: (into) => into.fill(auditNext ? 0 : 255), runtimes: {} } };
    paidUnits = [];
  });
  afterEach(async () => {
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  const submit = async (id: string, units: number): Promise<DotJob> => {
    const count = units * DOTS_PER_UNIT;
    const x = new Float32Array(count * DIM).map((_, i) => (i % 7) - 3);
    const y = new Float32Array(count * DIM).map((_, i) => ((i * 3) % 5) - 2);
    const job = { id, count, dim: DIM, x, y };
    await ctx.jobs.submit('owner', dotsAuditedOnly, { id, job, operands: [new Uint8Array(x.buffer), new Uint8Array(y.buffer)] }, Date.now());
    return job;
  };
  /** Leases this miner the next unit and returns its result (honest, or each dot product off by one), audited or not. */
  const mine = async (job: DotJob, { audit, cheat = false }: { audit: boolean; cheat?: boolean }): Promise<Settlement> => {
    const lease = await ctx.queue.lease(MINER.sessionId, Date.now(), DOT_MINER);
    if (!lease) throw new Error('expected a lease');
    const unit = lease.unit as DotUnit;
    const values = dots(job.x.subarray(unit.first * DIM), job.y.subarray(unit.first * DIM), unit.rows, DIM).map((v) => (cheat ? v + 1 : v));
    auditNext = audit;
    const settlement = await settle(ctx, MINER, { leaseId: lease.id, unitId: unit.id, gpuSeconds: 0.01, output: f32Tensor([values.length], values), leaseSentAtMs: Date.now() - 100 });
    auditNext = false;
    if (settlement.type === 'settled') for (const r of settlement.receipts) paidUnits.push(r.unitId);
    return settlement;
  };
  const pending = async () => (await ledger.pendingCredits({ minerKey: MINER.minerKey })).length;
  /** Builds a record of n audits passed in a row by audited units, each settled at once (nothing else is pending). */
  const climb = async (job: DotJob, n: number) => {
    for (let i = 0; i < n; i++) expect((await mine(job, { audit: true })).type).toBe('settled');
    expect(await ledger.auditsPassed(MINER.minerKey)).toBe(n);
  };
  const jobDone = async (id: string) => {
    // A hang guard only: the stalled job's audits run in the background and end when its last held unit is settled.
    for (let i = 0; i < 2_000; i++) {
      const output = (await ctx.queue.job(id))?.output;
      if (output) return output;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`job ${id} did not finish`);
  };

  it('keeps ceil(2/p) units as the bond after each passed audit, as the record grows', async () => {
    const job = await submit('grow', 240);
    await climb(job, 2);
    // From n = 2 on the draw can be steered: three units held, then one audited that passes, and so on to the floor.
    const seen: [number, number][] = [];
    for (let step = 0; step < 42; step++) {
      for (let i = 0; i < 3; i++) expect((await mine(job, { audit: false })).type).toBe('pending');
      const before = await pending();
      expect((await mine(job, { audit: true })).type).toBe('settled');
      const n = await ledger.auditsPassed(MINER.minerKey);
      expect(n).toBe(3 + step);
      // The audited unit is paid; of the others exactly the newest B stay (fewer only while fewer were held).
      expect(await pending(), `n = ${n}`).toBe(Math.min(bondUnits(n), before));
      seen.push([n, await pending()]);
    }
    // The bond followed B = n + 1 while p = 2/(n + 1), and holds at 40 from the floor on.
    expect(seen.find(([n]) => n === 10)?.[1]).toBe(11);
    expect(seen.find(([n]) => n === 39)?.[1]).toBe(40);
    expect(seen.at(-1)).toEqual([44, 40]);
    expect(auditProbability(44)).toBe(AUDIT_FLOOR);
  }, 120_000);

  it('makes a cheat on the unit just after a passed audit forfeit its whole bond, not just that unit', async () => {
    const job = await submit('cheat', 100);
    await climb(job, 2);
    // Up to the floor (n = 39) by audits; the units held meanwhile fill the bond beyond 40.
    for (let n = 2; n < 39; n++) {
      expect((await mine(job, { audit: false })).type).toBe('pending');
      expect((await mine(job, { audit: true })).type).toBe('settled');
    }
    for (let i = 0; i < 10; i++) expect((await mine(job, { audit: false })).type).toBe('pending');
    expect(await ledger.auditsPassed(MINER.minerKey)).toBe(39);
    // A passed audit at the floor: today's rule paid everything here, leaving nothing at stake.
    expect((await mine(job, { audit: true })).type).toBe('settled');
    const bond = bondUnits(40);
    expect(bond).toBe(40);
    expect(await pending()).toBe(bond);
    const balanceBefore = await ledger.balance(MINER.minerKey);

    // Its very next unit is a cheat, and this one is audited.
    const caught = await mine(job, { audit: true, cheat: true });
    if (caught.type !== 'rejected') throw new Error(`expected the cheat rejected, got ${caught.type}`);
    expect(caught.error.code).toBe('verification-failed');
    expect(caught.forfeited?.unitIds.length).toBe(bond + 1);
    expect(caught.forfeited?.microCredits).toBe(BigInt(bond + 1) * UNIT_PAY);
    expect(await ledger.forfeited(MINER.minerKey)).toBeGreaterThanOrEqual(BigInt(bond) * UNIT_PAY);
    expect(await pending()).toBe(0);
    expect(await ledger.balance(MINER.minerKey)).toBe(balanceBefore);
    expect(await ledger.auditsPassed(MINER.minerKey)).toBe(0);
    // Paid exactly the units settled, once each, at ops x rate.
    expect(new Set(paidUnits).size).toBe(paidUnits.length);
    expect(await ledger.totals()).toEqual({ units: paidUnits.length, ops: BigInt(paidUnits.length * 2 * DOTS_PER_UNIT * DIM), microCredits: BigInt(paidUnits.length) * UNIT_PAY });
    expect(await ledger.balance(MINER.minerKey)).toBe(BigInt(paidUnits.length) * UNIT_PAY);
  }, 120_000);

  it('finishes a job mined entirely by one miner at the floor: its tail, held in the bond, is audited to the end', async () => {
    // The record: 39 audits passed on a first job, which finishes with nothing held.
    const first = await submit('record', 39);
    await climb(first, 39);
    await jobDone('record');

    // A second job, none of whose units the draw audits at 5%: every unit is held, then the tail is audited by the coordinator.
    const UNITS = 60;
    const job = await submit('tail', UNITS);
    for (let i = 0; i < UNITS; i++) expect((await mine(job, { audit: false })).type).toBe('pending');
    const output = await jobDone('tail');
    expect(JSON.parse(new TextDecoder().decode(output.body))).toEqual({ dots: [...dots(job.x, job.y, job.count, DIM)] });
    // The tail was audited in full: the first audit passed (n = 40) paid the units older than its bond of 40, then
    // each of those 40 was audited and paid by itself. Nothing settled by time.
    expect(await ledger.auditsPassed(MINER.minerKey)).toBe(39 + 1 + bondUnits(40));
    // Every unit of both jobs is paid once, at ops x rate, exactly; nothing is left pending or forfeited.
    expect(await pending()).toBe(0);
    expect(await ledger.forfeited(MINER.minerKey)).toBe(0n);
    const units = 39 + UNITS;
    expect(await ledger.totals()).toEqual({ units, ops: BigInt(units * 2 * DOTS_PER_UNIT * DIM), microCredits: BigInt(units) * UNIT_PAY });
    expect(await ledger.balance(MINER.minerKey)).toBe(BigInt(units) * UNIT_PAY);
  }, 120_000);
});
