import { describe, expect, it } from 'vitest';
import { LEASE_BASE_MS, RESULT_RETENTION_MS, Scheduler } from '../../../src/coordinator/scheduler.ts';
import { gemmKind, type GemmJob } from '../../../src/work/gemm/gemm.ts';
import type { AnyWorkKind, MinerCapabilities } from '../../../src/work/kind.ts';

const job = (id: string, m: number, n: number, k: number): GemmJob => ({
  id, m, n, k, precision: 'f32', a: new Float32Array(m * k).fill(1), b: new Float32Array(k * n).fill(1),
});

const submit = (s: Scheduler, j: GemmJob, nowMs: number, kind: AnyWorkKind = gemmKind as AnyWorkKind) =>
  s.submit({ id: j.id, kind, job: j, owner: 'owner', operands: [], heldBytes: 0, createdAtMs: nowMs }, new Map(), nowMs);

const miner = (precisions = ['f32'], kinds = ['gemm'], features: string[] = []): MinerCapabilities => ({ kinds, precisions, features });
const lease = (s: Scheduler, session: string, nowMs: number, capabilities = miner()) => s.lease(session, nowMs, capabilities);

describe('scheduler', () => {
  it('leases each unit to one miner at a time, oldest job first', async () => {
    const s = new Scheduler();
    await submit(s, job('first', 300, 10, 4), 0);
    await submit(s, job('second', 10, 10, 4), 0);
    const leases = [await lease(s, 'm1', 0), await lease(s, 'm2', 0), await lease(s, 'm1', 0)];
    expect(leases.map((l) => l?.unit.jobId)).toEqual(['first', 'first', 'second']);
    expect(new Set(leases.map((l) => l?.unit.id)).size).toBe(3);
    expect(await lease(s, 'm2', 0)).toBeUndefined();
  });

  it('re-leases a unit whose lease expired, and refuses the late result', async () => {
    const s = new Scheduler();
    await submit(s, job('j', 10, 10, 4), 0);
    const first = await lease(s, 'slow', 0);
    expect(first).toBeDefined();
    expect(await s.expire(LEASE_BASE_MS - 1)).toHaveLength(0);
    expect(await s.expire(LEASE_BASE_MS + 1)).toHaveLength(1);
    expect(await s.leaseFor(first?.id ?? '', 'slow')).toBeUndefined();
    expect((await lease(s, 'fast', LEASE_BASE_MS + 2))?.unit.id).toBe(first?.unit.id);
  });

  it('gives back every lease of a miner that left, and only to its own session', async () => {
    const s = new Scheduler();
    await submit(s, job('j', 600, 10, 4), 0);
    const a = await lease(s, 'gone', 0);
    await lease(s, 'gone', 0);
    const kept = await lease(s, 'stays', 0);
    expect(await s.leaseFor(a?.id ?? '', 'stays')).toBeUndefined();
    expect(await s.releaseSession('gone')).toHaveLength(2);
    expect(await s.leaseFor(kept?.id ?? '', 'stays')).toBe(kept);
    expect(await s.counts()).toMatchObject({ unitsPending: 2, unitsLeased: 1 });
  });

  it('assembles the output when the last unit completes', async () => {
    const s = new Scheduler();
    const state = await submit(s, job('j', 300, 2, 3), 0);
    const l1 = await lease(s, 'm', 0);
    const l2 = await lease(s, 'm', 0);
    if (!l1 || !l2) throw new Error('expected two leases');
    const rows = (l: typeof l1) => (l.unit as unknown as { rows: number }).rows;
    await s.complete(l1, new Float32Array(rows(l1) * 2).fill(3), 5, 'miner');
    expect(await s.status(state)).toBe('running');
    await s.complete(l2, new Float32Array(rows(l2) * 2).fill(3), 9, 'miner');
    expect(await s.status(state)).toBe('done');
    expect(new Float32Array(Uint8Array.from(state.output?.body ?? []).buffer).every((x) => x === 3)).toBe(true);
    expect(state.output?.headers).toEqual({ 'x-ergon-shape': '300x2' });
    expect(state.finishedAtMs).toBe(9);
  });
});

describe('scheduler housekeeping', () => {
  it('drops a removed job\'s queued units and live leases', async () => {
    const s = new Scheduler();
    await submit(s, job('gone', 600, 10, 4), 0);
    await submit(s, job('kept', 10, 10, 4), 0);
    const held = await lease(s, 'm', 0);
    expect(await s.remove('gone')).toBe(true);
    expect(await s.remove('gone')).toBe(false);
    expect(await s.leaseFor(held?.id ?? '', 'm')).toBeUndefined();
    expect((await lease(s, 'm', 0))?.unit.jobId).toBe('kept');
  });

  it('leases an f16 job\'s units only to miners that run f16, passing over them for the others', async () => {
    const s = new Scheduler();
    const halves = (count: number) => new Uint16Array(count).fill(0x3c00);
    await submit(s, { ...job('half', 10, 10, 4), precision: 'f16', halves: { a: halves(40), b: halves(40) } }, 0);
    await submit(s, job('full', 10, 10, 4), 1);
    expect((await lease(s, 'f32-only', 0))?.unit.jobId).toBe('full');
    expect(await lease(s, 'f32-only', 0)).toBeUndefined();
    expect((await lease(s, 'f16', 0, miner(['f32', 'f16'])))?.unit.jobId).toBe('half');
  });

  it('leases a unit only to a miner that declared its kind and the features it needs', async () => {
    const s = new Scheduler();
    const needsSubgroups = { ...gemmKind, name: 'other', requirements: () => ({ precision: 'f32', features: ['subgroups'] }) } as AnyWorkKind;
    await submit(s, job('other-job', 10, 10, 4), 0, needsSubgroups);
    expect(await lease(s, 'gemm-only', 0)).toBeUndefined();
    expect(await lease(s, 'no-feature', 0, miner(['f32'], ['gemm', 'other']))).toBeUndefined();
    expect((await lease(s, 'able', 0, miner(['f32'], ['other'], ['subgroups'])))?.unit.jobId).toBe('other-job');
  });

  it('forgets finished jobs after the retention time, and frees their operands at once', async () => {
    const s = new Scheduler();
    const state = await submit(s, job('j', 10, 10, 4), 0);
    const held = await lease(s, 'm', 0);
    if (!held) throw new Error('expected a lease');
    await s.complete(held, new Float32Array(100), 1_000, 'miner');
    expect((await s.job('j'))?.job).toBeNull();
    expect(state.output?.body.byteLength).toBe(400);
    expect(await s.evictFinished(1_000 + RESULT_RETENTION_MS)).toEqual([]);
    expect(await s.evictFinished(1_001 + RESULT_RETENTION_MS)).toEqual(['j']);
    expect(await s.job('j')).toBeUndefined();
  });

  describe('affinity', () => {
    // A 1024x1024 job: 4x4 units of 256x256, leased row by row in queue order.
    const cols = (l: { unit: unknown } | undefined) => (l?.unit as { col0: number } | undefined)?.col0;
    const rows = (l: { unit: unknown } | undefined) => (l?.unit as { row0: number } | undefined)?.row0;

    it('gives a miner holding a B column block the units of that column first', async () => {
      const s = new Scheduler();
      await submit(s, job('j', 1024, 1024, 8), 0);
      const first = await lease(s, 'holder', 0);
      expect([rows(first), cols(first)]).toEqual([0, 0]);
      // Four other miners, holding nothing, take the next units in queue order: the rest of row 0 and (256, 0).
      const others = [];
      for (let i = 0; i < 4; i++) others.push(await lease(s, `other-${i}`, 0));
      expect(others.map((l) => [rows(l), cols(l)])).toEqual([[0, 256], [0, 512], [0, 768], [256, 0]]);
      // The queue's head is (256, 256), which shares nothing with the holder: it gets column 0's next unit instead.
      const next = await lease(s, 'holder', 0);
      expect([rows(next), cols(next)]).toEqual([512, 0]);
      // A miner that holds nothing gets the head.
      const fresh = await lease(s, 'fresh', 0);
      expect([rows(fresh), cols(fresh)]).toEqual([256, 256]);
    });

    it('prefers a unit of both held blocks over units of one held block', async () => {
      const s = new Scheduler();
      await submit(s, job('j', 1024, 1024, 8), 0);
      const l1 = await lease(s, 'holder', 0); // row 0, col 0: holds A0 and B0
      const l2 = await lease(s, 'holder', 0); // row 0 again (A0 held): col 256, now holds B256 too
      expect([cols(l1), cols(l2)]).toEqual([0, 256]);
      // Unit (0, 0) given back: the holder, holding A0, B0 and B256, gets it back before (0, 512) (A0 only).
      if (!l1) throw new Error('expected a lease');
      await s.release(l1);
      const again = await lease(s, 'holder', 0);
      expect(again?.unit.id).toBe(l1.unit.id);
    });

    it('never passes over an older job for a newer one whose blocks the miner holds', async () => {
      const s = new Scheduler();
      await submit(s, job('old', 256, 256, 8), 0);
      await submit(s, job('new', 512, 512, 8), 0);
      const oldLease = await lease(s, 'other', 0);
      expect(oldLease?.unit.jobId).toBe('old');
      expect((await lease(s, 'holder', 0))?.unit.jobId).toBe('new');
      // The old job's unit comes back (its miner failed): the holder gets it, though it holds the new job's blocks.
      if (!oldLease) throw new Error('expected a lease');
      await s.release(oldLease);
      expect((await lease(s, 'holder', 0))?.unit.jobId).toBe('old');
    });

    it('forgets what a miner held when it leaves', async () => {
      const s = new Scheduler();
      await submit(s, job('j', 1024, 1024, 8), 0);
      await lease(s, 'holder', 0);
      await s.releaseSession('holder');
      await lease(s, 'other', 0); // takes (0,0) back
      expect(cols(await lease(s, 'holder', 0))).toBe(256);
    });
  });

  describe('spans', () => {
    const rowsOf = (l: { unit: unknown } | undefined) => (l?.unit as { row0: number; rows: number } | undefined);

    it('joins waiting tiles of one column into one lease, and takes them all out of the queue', async () => {
      const s = new Scheduler();
      await submit(s, job('j', 1024, 512, 8), 0); // 4 x 2 tiles
      const span = await s.lease('m', 0, miner(), 3);
      expect(span?.parts?.map((u) => u.id)).toEqual(['j.0.0', 'j.1.0', 'j.2.0']);
      expect(rowsOf(span)).toMatchObject({ row0: 0, rows: 768 });
      expect(await s.counts()).toMatchObject({ unitsPending: 5, unitsLeased: 3 });
      expect(await s.unitCounts('j')).toMatchObject({ waiting: 5, leased: 3 });
      expect(await s.leaseCount(['m'])).toBe(1);
      // Another miner cannot be leased a tile the span holds.
      const next = await s.lease('other', 0, miner(), 1);
      expect(span?.parts?.map((u) => u.id)).not.toContain(next?.unit.id);
    });

    it('gives every tile of a span back when its lease ends, and leases one unit to a miner that asks for one', async () => {
      const s = new Scheduler();
      await submit(s, job('j', 1024, 256, 8), 0);
      const span = await s.lease('m', 0, miner(), 4);
      if (!span) throw new Error('expected a lease');
      expect(span.parts).toHaveLength(4);
      expect(await s.expire(LEASE_BASE_MS + 10_000)).toHaveLength(1);
      expect(await s.counts()).toMatchObject({ unitsPending: 4, unitsLeased: 0 });
      const single = await s.lease('m', LEASE_BASE_MS + 10_001, miner());
      expect(single?.parts).toBeUndefined();
      expect(single?.unit.id).toBe('j.0.0');
    });

    it('completes the parts that have results, and queues again the one that has none', async () => {
      const s = new Scheduler();
      const state = await submit(s, job('j', 768, 2, 3), 0);
      const span = await s.lease('m', 0, miner(), 3);
      if (!span?.parts) throw new Error('expected a span');
      const [p0, p1, p2] = span.parts;
      await s.completeSpan(span, new Map([[p0.id, new Float32Array(512)], [p2.id, new Float32Array(512)]]), 5, 'miner');
      expect(await s.leaseFor(span.id, 'm')).toBeUndefined();
      expect(await s.endedLease(span.id)).toMatchObject({ end: 'completed', unitId: span.unit.id });
      expect(await s.status(state)).toBe('running');
      const again = await s.lease('m', 6, miner(), 3);
      expect(again?.unit.id).toBe(p1.id);
      await s.complete(again as NonNullable<typeof again>, new Float32Array(512), 7, 'miner');
      expect(await s.status(state)).toBe('done');
    });
  });
});

