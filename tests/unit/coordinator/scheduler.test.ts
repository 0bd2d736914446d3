import { describe, expect, it } from 'vitest';
import { LEASE_BASE_MS, Scheduler } from '../../../src/coordinator/scheduler.ts';
import type { GemmJob } from '../../../src/work/gemm/gemm.ts';

const job = (id: string, m: number, n: number, k: number): GemmJob => ({
  id, m, n, k, precision: 'f32', a: new Float32Array(m * k).fill(1), b: new Float32Array(k * n).fill(1),
});

describe('scheduler', () => {
  it('leases each unit to one miner at a time, oldest job first', () => {
    const s = new Scheduler();
    s.submit(job('first', 300, 10, 4), 0);
    s.submit(job('second', 10, 10, 4), 0);
    const leases = [s.lease('m1', 0), s.lease('m2', 0), s.lease('m1', 0)];
    expect(leases.map((l) => l?.unit.jobId)).toEqual(['first', 'first', 'second']);
    expect(new Set(leases.map((l) => l?.unit.id)).size).toBe(3);
    expect(s.lease('m2', 0)).toBeUndefined();
  });

  it('re-leases a unit whose lease expired, and refuses the late result', () => {
    const s = new Scheduler();
    s.submit(job('j', 10, 10, 4), 0);
    const lease = s.lease('slow', 0);
    expect(lease).toBeDefined();
    expect(s.expire(LEASE_BASE_MS - 1)).toHaveLength(0);
    expect(s.expire(LEASE_BASE_MS + 1)).toHaveLength(1);
    expect(s.leaseFor(lease?.id ?? '', 'slow')).toBeUndefined();
    expect(s.lease('fast', LEASE_BASE_MS + 2)?.unit.id).toBe(lease?.unit.id);
  });

  it('gives back every lease of a miner that left, and only to its own session', () => {
    const s = new Scheduler();
    s.submit(job('j', 600, 10, 4), 0);
    const a = s.lease('gone', 0);
    s.lease('gone', 0);
    const kept = s.lease('stays', 0);
    expect(s.leaseFor(a?.id ?? '', 'stays')).toBeUndefined();
    expect(s.releaseSession('gone')).toHaveLength(2);
    expect(s.leaseFor(kept?.id ?? '', 'stays')).toBe(kept);
    expect(s.counts()).toMatchObject({ unitsPending: 2, unitsLeased: 1 });
  });

  it('assembles the output when the last unit completes', () => {
    const s = new Scheduler();
    const state = s.submit(job('j', 300, 2, 3), 0);
    const l1 = s.lease('m', 0);
    const l2 = s.lease('m', 0);
    if (!l1 || !l2) throw new Error('expected two leases');
    s.complete(l1, new Float32Array(l1.unit.rows * 2).fill(3), 5, 'miner');
    expect(s.status(state)).toBe('running');
    s.complete(l2, new Float32Array(l2.unit.rows * 2).fill(3), 9, 'miner');
    expect(s.status(state)).toBe('done');
    expect(state.output?.every((x) => x === 3)).toBe(true);
    expect(state.finishedAtMs).toBe(9);
  });
});

describe('scheduler housekeeping', () => {
  it('drops a removed job\'s queued units and live leases', () => {
    const s = new Scheduler();
    s.submit(job('gone', 600, 10, 4), 0);
    s.submit(job('kept', 10, 10, 4), 0);
    const lease = s.lease('m', 0);
    expect(s.remove('gone')).toBe(true);
    expect(s.remove('gone')).toBe(false);
    expect(s.leaseFor(lease?.id ?? '', 'm')).toBeUndefined();
    expect(s.lease('m', 0)?.unit.jobId).toBe('kept');
  });

  it('leases an f16 job\'s units only to miners that run f16, passing over them for the others', () => {
    const s = new Scheduler();
    const halves = (count: number) => new Uint16Array(count).fill(0x3c00);
    s.submit({ ...job('half', 10, 10, 4), precision: 'f16', halves: { a: halves(40), b: halves(40) } }, 0);
    s.submit(job('full', 10, 10, 4), 1);
    expect(s.lease('f32-only', 0)?.unit.jobId).toBe('full');
    expect(s.lease('f32-only', 0)).toBeUndefined();
    expect(s.lease('f16', 0, ['f32', 'f16'])?.unit.jobId).toBe('half');
  });

  it('forgets finished jobs after the retention time, and frees their operands at once', async () => {
    const { RESULT_RETENTION_MS } = await import('../../../src/coordinator/scheduler.ts');
    const s = new Scheduler();
    const state = s.submit(job('j', 10, 10, 4), 0);
    const lease = s.lease('m', 0);
    if (!lease) throw new Error('expected a lease');
    s.complete(lease, new Float32Array(100), 1_000, 'miner');
    expect(s.job('j')?.job.a.length).toBe(0);
    expect(state.output?.length).toBe(100);
    expect(s.evictFinished(1_000 + RESULT_RETENTION_MS)).toEqual([]);
    expect(s.evictFinished(1_001 + RESULT_RETENTION_MS)).toEqual(['j']);
    expect(s.job('j')).toBeUndefined();
  });
});
