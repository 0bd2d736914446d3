// What every WorkQueue must do, used as the coordinator uses it (the job saved in the ledger, then queued; a result
// credited, then completed): run by each backend's test. `open` gives a coordinator's queue on the same store: for a
// shared database each call is another coordinator's, for the in-memory queue it is the one queue.
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/coordinator/ledger/ledger.ts';
import type { OperandStore } from '../../../src/coordinator/operand-store.ts';
import type { Lease, WorkQueue } from '../../../src/coordinator/queue.ts';
import { LEASE_BASE_MS } from '../../../src/coordinator/scheduler.ts';
import { microCreditsFor, type AnyWorkKind, type MinerCapabilities } from '../../../src/work/kind.ts';
import { dotKind, dots, DOTS_PER_UNIT, GRID_COLUMNS, gridDotKind, spanDotKind, type DotJob, type DotUnit } from '../../helpers/dot-kind.ts';

export interface QueueStore {
  open(): Promise<WorkQueue>;
  ledger: Ledger;
  operands: OperandStore;
  cleanUp(): Promise<void>;
}

const kind = dotKind as unknown as AnyWorkKind;
const spanKind = spanDotKind as unknown as AnyWorkKind;
const DOT_MINER: MinerCapabilities = { kinds: ['dot', 'dot-grid', 'dot-span'], precisions: ['f32'], features: [] };
const T0 = 1_800_000_000_000;

function makeJob(id: string, count: number, dim = 8): DotJob {
  const x = new Float32Array(count * dim).map((_, i) => (i % 7) - 3);
  const y = new Float32Array(count * dim).map((_, i) => (i % 5) - 2);
  return { id, count, dim, x, y };
}

const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export async function submitJob(store: QueueStore, queue: WorkQueue, job: DotJob, nowMs = T0, jobKind = kind) {
  const operands = [await store.operands.put(bytes(job.x)), await store.operands.put(bytes(job.y))];
  await store.ledger.saveJob({ id: job.id, owner: 'owner', kind: jobKind.name, params: { count: job.count, dim: job.dim }, operands, createdAtMs: nowMs, finishedAtMs: null });
  return queue.submit({ id: job.id, kind: jobKind, job, owner: 'owner', operands, heldBytes: 0, createdAtMs: nowMs }, new Map(), nowMs);
}

/** A unit's honest result, credited in the ledger as the coordinator credits it before the queue hears of it. */
async function credit(store: QueueStore, job: DotJob, unit: DotUnit, minerKey: string, nowMs: number) {
  const x = job.x.subarray(unit.first * job.dim, (unit.first + unit.rows) * job.dim);
  const y = job.y.subarray(unit.first * job.dim, (unit.first + unit.rows) * job.dim);
  const result = dots(x, y, unit.rows, unit.dim);
  const ops = dotKind.ops(unit);
  const credited = await store.ledger.credit(
    { unitId: unit.id, jobId: job.id, minerKey, ops, microCredits: microCreditsFor(ops, 3_000_000n), gpuSeconds: 0.1, createdAtMs: nowMs },
    bytes(result),
  );
  return { result, credited };
}

/** Settles a lease honestly: its credit, then the queue; the job when this finished it. */
export async function completeLease(store: QueueStore, queue: WorkQueue, job: DotJob, lease: Lease, minerKey: string, nowMs = T0) {
  const { result, credited } = await credit(store, job, lease.unit as DotUnit, minerKey, nowMs);
  const finished = await queue.complete(lease, result, nowMs, minerKey);
  return { credited, finished };
}

/** Credits these parts of a span and completes it with their results (the others' credits failed to store). */
export async function completeParts(store: QueueStore, queue: WorkQueue, job: DotJob, span: Lease, parts: readonly DotUnit[], minerKey: string, nowMs: number) {
  const results = new Map<string, unknown>();
  for (const part of parts) results.set(part.id, (await credit(store, job, part, minerKey, nowMs)).result);
  return queue.completeSpan(span, results, nowMs, minerKey);
}

export function queueConformance(backend: string, fresh: () => Promise<QueueStore>): void {
  describe(`${backend} queue: conformance`, () => {
    const withStore = async (test: (store: QueueStore) => Promise<void>) => {
      const store = await fresh();
      try {
        await test(store);
      } finally {
        await store.cleanUp();
      }
    };

    it('leases each unit to one miner at a time, oldest job first, and only to miners that run its kind', () => withStore(async (store) => {
      const queue = await store.open();
      await submitJob(store, queue, makeJob('first', 2 * DOTS_PER_UNIT));
      await submitJob(store, queue, makeJob('second', DOTS_PER_UNIT), T0 + 1);
      expect(await queue.lease('gemm-only', T0, { kinds: ['gemm'], precisions: ['f32'], features: [] })).toBeUndefined();
      const leases = [await queue.lease('m1', T0, DOT_MINER), await queue.lease('m2', T0, DOT_MINER), await queue.lease('m1', T0, DOT_MINER)];
      expect(leases.map((l) => l?.unit.jobId)).toEqual(['first', 'first', 'second']);
      expect(new Set(leases.map((l) => l?.unit.id)).size).toBe(3);
      expect(await queue.lease('m2', T0, DOT_MINER)).toBeUndefined();
      expect(await queue.leaseCount(['m1'])).toBe(2);
      expect(await queue.counts()).toMatchObject({ jobs: 2, jobsOpen: 2, unitsPending: 0, unitsLeased: 3 });
    }));

    it('leases a miner the units of the oldest job whose operand blocks it was leased before, others in queue order', () => withStore(async (store) => {
      const queue = await store.open();
      // 3 x 4 units on a grid: unit i reads block row(i / 4) and block col(i % 4).
      await submitJob(store, queue, makeJob('grid', 3 * GRID_COLUMNS * DOTS_PER_UNIT), T0, gridDotKind as unknown as AnyWorkKind);
      const index = (lease: Lease | undefined) => (lease ? (lease.unit as DotUnit).first / DOTS_PER_UNIT : -1);
      expect(index(await queue.lease('holder', T0, DOT_MINER))).toBe(0);
      // Miners that hold nothing take the queue's head: the rest of row 0, then unit 4 (row 1, col 0).
      const others = [];
      for (let i = 0; i < 4; i++) others.push(index(await queue.lease(`other-${i}`, T0, DOT_MINER)));
      expect(others).toEqual([1, 2, 3, 4]);
      // The head is unit 5 (row 1, col 1), which shares nothing with the holder: it gets col 0's next unit, 8.
      expect(index(await queue.lease('holder', T0, DOT_MINER))).toBe(8);
      expect(index(await queue.lease('fresh', T0, DOT_MINER))).toBe(5);
      // Holding rows 0 and 2 and col 0 now, it gets unit 9 (row 2) before the head, 6 (nothing held).
      expect(index(await queue.lease('holder', T0, DOT_MINER))).toBe(9);
      expect(index(await queue.lease('fresh', T0, DOT_MINER))).toBe(6);
    }));

    it('re-leases a unit whose lease expired, first in line, and remembers why the old lease ended', () => withStore(async (store) => {
      const queue = await store.open();
      await submitJob(store, queue, makeJob('j', 3 * DOTS_PER_UNIT));
      const slow = await queue.lease('slow', T0, DOT_MINER);
      if (!slow) throw new Error('expected a lease');
      expect(await queue.expire(T0 + LEASE_BASE_MS - 1)).toHaveLength(0);
      expect((await queue.expire(T0 + LEASE_BASE_MS + 1)).map((l) => l.id)).toEqual([slow.id]);
      expect(await queue.leaseFor(slow.id, 'slow')).toBeUndefined();
      expect(await queue.endedLease(slow.id)).toEqual({ sessionId: 'slow', unitId: slow.unit.id, end: 'expired' });
      expect((await queue.lease('fast', T0 + LEASE_BASE_MS + 2, DOT_MINER))?.unit.id).toBe(slow.unit.id);
    }));

    it('gives back every lease of a miner that left, and a lease only to its own session', () => withStore(async (store) => {
      const queue = await store.open();
      await submitJob(store, queue, makeJob('j', 3 * DOTS_PER_UNIT));
      const a = await queue.lease('gone', T0, DOT_MINER);
      await queue.lease('gone', T0, DOT_MINER);
      const kept = await queue.lease('stays', T0, DOT_MINER);
      expect(await queue.leaseFor(a?.id ?? '', 'stays')).toBeUndefined();
      expect(await queue.releaseSession('gone')).toHaveLength(2);
      expect((await queue.leaseFor(kept?.id ?? '', 'stays'))?.unit.id).toBe(kept?.unit.id);
      expect(await queue.counts()).toMatchObject({ unitsPending: 2, unitsLeased: 1 });
    }));

    it('joins waiting units into one span lease, gives them all back in their order when it ends, and completes its parts apart', () => withStore(async (store) => {
      const queue = await store.open();
      const job = makeJob('s', 4 * DOTS_PER_UNIT);
      const state = await submitJob(store, queue, job, T0, spanKind);
      const span = await queue.lease('m', T0, DOT_MINER, 3);
      if (!span?.parts) throw new Error('expected a span');
      expect(span.unit.id).toBe('s.0:3');
      expect(span.parts.map((u) => u.id)).toEqual(['s.0', 's.1', 's.2']);
      expect(await queue.leaseCount(['m'])).toBe(1);
      expect(await queue.unitCounts('s')).toMatchObject({ waiting: 1, leased: 3 });
      const found = await queue.leaseFor(span.id, 'm');
      expect(found?.unit).toEqual(span.unit);
      expect(found?.parts).toEqual(span.parts);
      // Its lease ends: every part waits again, in its order, and is joined again the same way.
      const ended = T0 + LEASE_BASE_MS + 10_000;
      expect((await queue.expire(ended)).map((l) => l.id)).toEqual([span.id]);
      expect(await queue.endedLease(span.id)).toEqual({ sessionId: 'm', unitId: 's.0:3', end: 'expired' });
      const again = await queue.lease('m', ended + 1, DOT_MINER, 4);
      if (!again?.parts) throw new Error('expected a span');
      expect(again.parts.map((u) => u.id)).toEqual(['s.0', 's.1', 's.2', 's.3']);
      // Two parts credited, two whose credits failed: those wait again; the lease is over, completed.
      const [p0, p1, p2] = again.parts as DotUnit[];
      expect(await completeParts(store, queue, job, again, [p0, p2], 'miner', ended + 2)).toBeUndefined();
      expect(await queue.leaseFor(again.id, 'm')).toBeUndefined();
      expect(await queue.endedLease(again.id)).toMatchObject({ end: 'completed', unitId: again.unit.id });
      expect(await queue.unitCounts('s')).toMatchObject({ waiting: 2, leased: 0 });
      expect(await queue.status(state)).toBe('running');
      const rest = await queue.lease('m', ended + 3, DOT_MINER, 4);
      expect([rest?.unit.id, ...(rest?.parts?.map((u) => u.id) ?? [])]).toContain(p1.id);
      const last = await queue.lease('m', ended + 3, DOT_MINER, 4);
      for (const lease of [rest, last]) if (lease) await completeParts(store, queue, job, lease, (lease.parts ?? [lease.unit]) as DotUnit[], 'miner', ended + 4);
      expect(await queue.unitCounts('s')).toMatchObject({ waiting: 0, leased: 0 });
      const done = await queue.job('s');
      expect(done?.output).toBeTruthy();
      expect(JSON.parse(new TextDecoder().decode(done?.output?.body))).toEqual({ dots: [...dots(job.x, job.y, job.count, job.dim)] });
    }));

    it('takes back a part credited after its span\'s lease ended and went out again: that lease ends, its other parts wait', () => withStore(async (store) => {
      const queue = await store.open();
      const job = makeJob('t', 2 * DOTS_PER_UNIT);
      await submitJob(store, queue, job, T0, spanKind);
      const late = await queue.lease('late', T0, DOT_MINER, 2);
      if (!late?.parts) throw new Error('expected a span');
      const ended = T0 + LEASE_BASE_MS + 10_000;
      await queue.expire(ended);
      const other = await queue.lease('other', ended + 1, DOT_MINER, 2);
      expect(other?.parts?.map((u) => u.id)).toEqual(['t.0', 't.1']);
      // The late miner's first part was being stored while its lease ran out: it is credited, and done.
      await completeParts(store, queue, job, late, [late.parts[0] as DotUnit], 'late', ended + 2);
      expect(await queue.leaseFor(other?.id ?? '', 'other')).toBeUndefined();
      expect((await queue.endedLease(other?.id ?? ''))?.end).not.toBe('completed');
      expect(await queue.unitCounts('t')).toMatchObject({ waiting: 1, leased: 0 });
      expect((await queue.lease('other', ended + 3, DOT_MINER, 2))?.unit.id).toBe('t.1');
    }));

    it('assembles the output once, when the last unit completes, and a unit completed twice is credited once', () => withStore(async (store) => {
      const queue = await store.open();
      const job = makeJob('j', 2 * DOTS_PER_UNIT + 1);
      const state = await submitJob(store, queue, job);
      expect(await queue.status(state)).toBe('queued');
      const leases: Lease[] = [];
      for (let i = 0; i < 3; i++) {
        const lease = await queue.lease('m', T0, DOT_MINER);
        if (!lease) throw new Error('expected a lease');
        leases.push(lease);
      }
      expect(await queue.status(state)).toBe('running');
      expect((await completeLease(store, queue, job, leases[0], 'aa')).finished).toBeUndefined();
      expect(await completeLease(store, queue, job, leases[0], 'bb')).toEqual({ credited: false, finished: undefined });
      expect((await completeLease(store, queue, job, leases[1], 'aa')).finished).toBeUndefined();
      const { finished } = await completeLease(store, queue, job, leases[2], 'bb');
      expect(finished?.output).toBeTruthy();
      const done = await queue.job('j');
      expect(done && (await queue.status(done))).toBe('done');
      expect(JSON.parse(new TextDecoder().decode(done?.output?.body))).toEqual({ dots: [...dots(job.x, job.y, job.count, job.dim)] });
      expect(await queue.endedLease(leases[2].id)).toMatchObject({ end: 'completed' });
      expect(await store.ledger.totals()).toMatchObject({ units: 3 });
    }));

    it('holds a unit pending an audit: neither leased nor done until settled (the job then assembled) or queued again, first in line', () => withStore(async (store) => {
      const queue = await store.open();
      const job = makeJob('h', 3 * DOTS_PER_UNIT);
      const state = await submitJob(store, queue, job);
      const hold = async (lease: Lease, minerKey: string) => {
        const unit = lease.unit as DotUnit;
        const result = dots(job.x.subarray(unit.first * job.dim), job.y.subarray(unit.first * job.dim), unit.rows, unit.dim);
        const ops = dotKind.ops(unit);
        await store.ledger.hold({ unitId: unit.id, jobId: job.id, minerKey, ops, microCredits: microCreditsFor(ops, 3_000_000n), gpuSeconds: 0.1, createdAtMs: T0 }, bytes(result));
        await queue.hold(lease, T0);
        return result;
      };
      const leases: Lease[] = [];
      for (let i = 0; i < 3; i++) {
        const lease = await queue.lease('m', T0, DOT_MINER);
        if (!lease) throw new Error('expected a lease');
        leases.push(lease);
      }
      const results = [await hold(leases[0], 'cheat'), await hold(leases[1], 'honest')];
      expect(await queue.unitCounts('h')).toEqual({ waiting: 0, leased: 1, held: 2 });
      expect(await queue.endedLease(leases[0].id)).toMatchObject({ end: 'completed' });
      expect(await queue.leaseFor(leases[0].id, 'm')).toBeUndefined();
      expect(await queue.lease('other', T0, DOT_MINER)).toBeUndefined();
      expect(await queue.counts()).toMatchObject({ unitsPending: 0, unitsLeased: 1 });
      expect(await queue.status(state)).toBe('running');

      // The cheat's audit failed: its unit goes back, first in line, and is done by someone else.
      const forfeited = await store.ledger.forfeitPending('cheat', 'audit failed', T0);
      await queue.requeue(forfeited.map((p) => ({ id: p.unitId, jobId: p.jobId })));
      expect(await queue.unitCounts('h')).toEqual({ waiting: 1, leased: 1, held: 1 });
      await submitJob(store, queue, makeJob('later', DOTS_PER_UNIT), T0 + 1);
      const again = await queue.lease('m2', T0, DOT_MINER);
      expect(again?.unit.id).toBe(leases[0].unit.id);
      if (!again) throw new Error('expected a lease');
      await completeLease(store, queue, job, again, 'aa');
      await completeLease(store, queue, job, leases[2], 'aa');
      // Only the honest miner's held unit is left: the job waits for its audit.
      expect(await queue.unitCounts('h')).toEqual({ waiting: 0, leased: 0, held: 1 });
      expect((await queue.job('h'))?.output).toBeNull();

      await store.ledger.settlePending('honest', leases[1].unit.id, () => 0);
      const unit = leases[1].unit;
      const finished = await queue.settle(unit, results[1], T0, 'honest');
      expect(finished?.output).toBeTruthy();
      const done = await queue.job('h');
      expect(JSON.parse(new TextDecoder().decode(done?.output?.body))).toEqual({ dots: [...dots(job.x, job.y, job.count, job.dim)] });
      // Settling a unit that is no longer held does nothing.
      expect(await queue.settle(unit, results[1], T0, 'honest')).toBeUndefined();
    }));

    it('forgets a removed job: its units leave the queue and its leases end', () => withStore(async (store) => {
      const queue = await store.open();
      await submitJob(store, queue, makeJob('j', 2 * DOTS_PER_UNIT));
      const lease = await queue.lease('m', T0, DOT_MINER);
      expect(await queue.remove('j')).toBe(true);
      await store.ledger.deleteJob('j');
      expect(await queue.job('j')).toBeUndefined();
      expect(await queue.endedLease(lease?.id ?? '')).toMatchObject({ end: 'removed' });
      expect(await queue.lease('m', T0, DOT_MINER)).toBeUndefined();
      expect(await queue.remove('j')).toBe(false);
    }));

    it('leases every unit exactly once when many coordinators and miners ask at once', () => withStore(async (store) => {
      const queues = await Promise.all([store.open(), store.open(), store.open()]);
      const job = makeJob('j', 24 * DOTS_PER_UNIT);
      await submitJob(store, queues[0], job);
      const leased: Lease[] = [];
      await Promise.all(Array.from({ length: 12 }, async (_, miner) => {
        const queue = queues[miner % queues.length];
        for (;;) {
          const lease = await queue.lease(`m${miner}`, T0, DOT_MINER);
          if (!lease) return;
          leased.push(lease);
          await completeLease(store, queue, job, lease, `k${miner}`);
        }
      }));
      expect(leased).toHaveLength(24);
      expect(new Set(leased.map((l) => l.unit.id)).size).toBe(24);
      expect(await store.ledger.totals()).toMatchObject({ units: 24 });
      const done = await queues[2].job('j');
      expect(done?.output).toBeTruthy();
    }));
  });
}
