// Leases in flight sized to the speed the coordinator measured: a new key one, a short record two, an established key
// about a second of its own measured work ahead, never more than the cap.
import { describe, expect, it } from 'vitest';
import { ESTABLISHED_AFTER_UNITS, LEASES_UNMEASURED, leaseAllowance, MAX_LEASES_PER_MINER, MeasuredSpeed, SECONDS_AHEAD } from '../../../src/coordinator/lease-sizing.ts';
import type { Reputation } from '../../../src/coordinator/ledger/ledger.ts';

const record = (accepted: number): Reputation => ({ minerKey: 'k', score: Math.min(50, accepted), accepted, rejected: 0, bannedUntilMs: 0 });
const GIGA = 1_000_000_000;

describe('leaseAllowance', () => {
  it('gives a key with no verified work one lease, however fast it seems', () => {
    expect(leaseAllowance(record(0), 1e15, 1_000n)).toBe(1);
  });

  it('gives a short record, or an unmeasured session, the two a miner needs to overlap upload and compute', () => {
    expect(leaseAllowance(record(1), 1e15, 1_000n)).toBe(LEASES_UNMEASURED);
    expect(leaseAllowance(record(ESTABLISHED_AFTER_UNITS - 1), 1e15, 1_000n)).toBe(LEASES_UNMEASURED);
    expect(leaseAllowance(record(ESTABLISHED_AFTER_UNITS), undefined, 1_000n)).toBe(LEASES_UNMEASURED);
    expect(leaseAllowance(record(ESTABLISHED_AFTER_UNITS), 1e9, 0n)).toBe(LEASES_UNMEASURED);
  });

  it('sizes an established key to a second of its measured speed beyond the unit computing', () => {
    const unitOps = 134_217_728n; // 256x256x1024
    // 1.34 GFLOP/s: 10 units a second, so 10 ahead and one computing.
    expect(leaseAllowance(record(100), 1.34217728 * GIGA, unitOps)).toBe(1 + 10 * SECONDS_AHEAD);
    // A slow miner (a unit takes 4 s) keeps the two it needs, no fewer.
    expect(leaseAllowance(record(100), Number(unitOps) / 4, unitOps)).toBe(LEASES_UNMEASURED);
    // A GPU a thousand times faster is held to the cap: a fast key cannot take a whole job's units.
    expect(leaseAllowance(record(100), 1000 * GIGA, unitOps)).toBe(MAX_LEASES_PER_MINER);
  });
});

describe('MeasuredSpeed', () => {
  it('knows nothing before a verified result', () => {
    expect(new MeasuredSpeed().opsPerSecond).toBeUndefined();
  });

  it('counts a result from its lease, or from the result before it when the miner was busy with that one', () => {
    const speed = new MeasuredSpeed();
    // Three leases sent at t = 0; results at 1 s, 2 s, 3 s: the miner took a second each, not 1, 2 and 3 s.
    speed.record(1_000n, 0, 1_000);
    speed.record(1_000n, 0, 2_000);
    speed.record(1_000n, 0, 3_000);
    expect(speed.opsPerSecond).toBeCloseTo(1_000, 6);
    // An idle gap (no lease held) is not counted against it: the next lease was sent at 10 s, its result came at 10.5 s.
    speed.record(1_000n, 10_000, 10_500);
    expect(speed.opsPerSecond).toBeCloseTo(4_000 / 3.5, 6);
  });

  it('follows the newest results: a miner that slows down is measured slower', () => {
    const speed = new MeasuredSpeed();
    let t = 0;
    for (let i = 0; i < 40; i++) speed.record(1_000n, t, (t += 100));
    expect(speed.opsPerSecond).toBeCloseTo(10_000, 6);
    for (let i = 0; i < 40; i++) speed.record(1_000n, t, (t += 1_000));
    expect(speed.opsPerSecond).toBeCloseTo(1_000, 6);
  });
});
