// Results kept across a reload: which records a Start takes back, and how the byte budget makes room.
import { describe, expect, it } from 'vitest';
import { admit, keptSize, liveResults, mayTake, type KeptSize, type UnsettledResult } from '../../../src/miner/unsettled-store.ts';

const NOW_MS = 1_700_000_000_000;

function result(unitId: string, deadlineAtMs: number, outputBytes = 16): UnsettledResult {
  return {
    minerKey: 'cd'.repeat(32),
    coordinatorKey: 'ab'.repeat(32),
    deadlineAtMs,
    ops: 2n * 16n * 16n * 16n,
    gpuSeconds: 0.01,
    message: {
      type: 'result', leaseId: `lease-${unitId}`, unitId, gpuSeconds: 0.01,
      output: { dtype: 'f32', shape: [outputBytes / 4], data: new Uint8Array(outputBytes) },
    },
  };
}

const size = (unitId: string, deadlineAtMs: number, bytes: number): KeptSize => ({ unitId, deadlineAtMs, bytes });

describe('results taken back after a reload', () => {
  it('takes back well-formed results whose leases last past now, and marks the rest for deletion', () => {
    const live = result('job.0', NOW_MS + 30_000);
    const records = [
      { key: 'job.0', value: live },
      { key: 'job.1', value: result('job.1', NOW_MS) }, // its lease ends now: the unit is someone else's
      { key: 'job.2', value: result('job.2', NOW_MS - 1) },
      { key: 'job.3', value: { ...result('job.3', NOW_MS + 30_000), ops: 1.5 } },
      { key: 'job.4', value: { ...result('job.4', NOW_MS + 30_000), coordinatorKey: 'not hex' } },
      { key: 'job.5', value: result('job.6', NOW_MS + 30_000) }, // filed under another unit's id
      { key: 'job.7', value: { ...result('job.7', NOW_MS + 30_000), message: { ...result('job.7', NOW_MS).message, output: { dtype: 'f32', shape: [5], data: new Uint8Array(16) } } } },
      { key: 'job.8', value: null },
    ];
    const { live: taken, stale } = liveResults(records, NOW_MS);
    expect(taken).toEqual([live]);
    expect(stale).toEqual(['job.1', 'job.2', 'job.3', 'job.4', 'job.5', 'job.7', 'job.8']);
  });

  it('takes back its own results and those of pages that are gone, not those of another page still open', () => {
    const live = new Set(['this-page', 'other-tab']);
    expect(mayTake('this-page', 'this-page', live)).toBe(true);
    expect(mayTake('reloaded-page', 'this-page', live)).toBe(true); // its lock went with it
    expect(mayTake(undefined, 'this-page', live)).toBe(true);
    expect(mayTake('other-tab', 'this-page', live)).toBe(false); // it waits for its own verdicts
    expect(mayTake('other-tab', 'this-page', new Set())).toBe(true); // no Web Locks: every page is taken for gone
  });

  it('counts a result as its output bytes and a fixed overhead', () => {
    const kept = keptSize(result('job.0', NOW_MS + 1, 4096));
    expect(kept.unitId).toBe('job.0');
    expect(kept.bytes).toBeGreaterThan(4096);
    expect(kept.bytes).toBeLessThan(4096 + 4096);
  });
});

describe('the byte budget of kept results', () => {
  it('keeps a result that fits and drops only those whose leases ended', () => {
    const kept = [size('a', NOW_MS - 5, 100), size('b', NOW_MS + 10_000, 100), size('c', NOW_MS, 100)];
    expect(admit(kept, size('d', NOW_MS + 20_000, 100), NOW_MS, 1_000)).toEqual({ keep: true, drop: ['a', 'c'] });
  });

  it('makes room by dropping the results nearest their deadlines first, no more than needed', () => {
    const kept = [size('late', NOW_MS + 50_000, 400), size('soon', NOW_MS + 1_000, 400), size('mid', NOW_MS + 20_000, 400)];
    expect(admit(kept, size('new', NOW_MS + 60_000, 400), NOW_MS, 1_000)).toEqual({ keep: true, drop: ['soon', 'mid'] });
    expect(admit(kept, size('new', NOW_MS + 60_000, 200), NOW_MS, 1_000)).toEqual({ keep: true, drop: ['soon'] });
  });

  it('never fills more than the budget, however big the backlog', () => {
    let kept: KeptSize[] = [];
    for (let i = 0; i < 1_000; i++) {
      const incoming = size(`u${i}`, NOW_MS + 30_000 + i, 64 + (i % 7) * 100);
      const { keep, drop } = admit(kept, incoming, NOW_MS, 10_000);
      kept = kept.filter((k) => !drop.includes(k.unitId));
      if (keep) kept.push(incoming);
      expect(kept.reduce((s, k) => s + k.bytes, 0)).toBeLessThanOrEqual(10_000);
    }
    // The newest results are those kept: the oldest leases are the ones given up.
    expect(kept.at(-1)?.unitId).toBe('u999');
    expect(kept.some((k) => k.unitId === 'u0')).toBe(false);
  });

  it('does not keep a result larger than the whole budget, and drops nothing live for it', () => {
    const kept = [size('a', NOW_MS + 10_000, 100)];
    expect(admit(kept, size('huge', NOW_MS + 20_000, 1_001), NOW_MS, 1_000)).toEqual({ keep: false, drop: [] });
  });

  it('does not keep a result whose lease already ended', () => {
    expect(admit([], size('late', NOW_MS, 10), NOW_MS, 1_000)).toEqual({ keep: false, drop: [] });
  });

  it('replaces a result kept for the same unit instead of counting it twice', () => {
    const kept = [size('a', NOW_MS + 10_000, 600)];
    expect(admit(kept, size('a', NOW_MS + 20_000, 600), NOW_MS, 1_000)).toEqual({ keep: true, drop: [] });
  });
});
