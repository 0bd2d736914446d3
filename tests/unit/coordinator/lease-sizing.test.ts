// Leases sized to the speed the coordinator measured: a new key one lease of one unit, a short record two, an
// established key leases of about a second of its own measured work each, enough to stay a second ahead, within caps.
import { describe, expect, it } from 'vitest';
import {
  ESTABLISHED_AFTER_UNITS, LEASES_UNMEASURED, leaseSize, MAX_LEASES_PER_MINER, MAX_UNITS_PER_LEASE, MAX_UNITS_PER_MINER, MeasuredSpeed,
} from '../../../src/coordinator/lease-sizing.ts';
import type { Reputation } from '../../../src/coordinator/ledger/ledger.ts';

const record = (accepted: number): Reputation => ({ minerKey: 'k', score: Math.min(50, accepted), accepted, rejected: 0, bannedUntilMs: 0 });
const GIGA = 1_000_000_000;

describe('leaseSize', () => {
  it('gives a key with no verified work one lease of one unit, however fast it seems', () => {
    expect(leaseSize(record(0), 1e15, 1_000n)).toEqual({ units: 1, leases: 1 });
  });

  it('gives a short record, or an unmeasured session, the two single units a miner needs to overlap upload and compute', () => {
    const two = { units: 1, leases: LEASES_UNMEASURED };
    expect(leaseSize(record(1), 1e15, 1_000n)).toEqual(two);
    expect(leaseSize(record(ESTABLISHED_AFTER_UNITS - 1), 1e15, 1_000n)).toEqual(two);
    expect(leaseSize(record(ESTABLISHED_AFTER_UNITS), undefined, 1_000n)).toEqual(two);
    expect(leaseSize(record(ESTABLISHED_AFTER_UNITS), 1e9, 0n)).toEqual(two);
  });

  it('gives an established key leases of about a second of its measured speed, enough to stay a second ahead', () => {
    const unitOps = 134_217_728n; // 256x256x1024
    // 1.34 GFLOP/s: 10 units a second, so leases of 10, one computing and one ahead.
    expect(leaseSize(record(100), 1.34217728 * GIGA, unitOps)).toEqual({ units: 10, leases: 2 });
    // 3.5 units a second: leases of 3, and two of them ahead.
    expect(leaseSize(record(100), 3.5 * Number(unitOps), unitOps)).toEqual({ units: 3, leases: 3 });
    // A slow miner (a unit takes 4 s) keeps two single units, no fewer.
    expect(leaseSize(record(100), Number(unitOps) / 4, unitOps)).toEqual({ units: 1, leases: LEASES_UNMEASURED });
  });

  it('holds a GPU a thousand times faster to the caps: a fast key cannot take a whole job', () => {
    const unitOps = 134_217_728n;
    const size = leaseSize(record(100), 1000 * GIGA, unitOps);
    expect(size.units).toBe(MAX_UNITS_PER_LEASE);
    expect(size.leases).toBeLessThanOrEqual(MAX_LEASES_PER_MINER);
    expect(size.units * size.leases).toBeLessThanOrEqual(MAX_UNITS_PER_MINER);
    expect(size.leases).toBeGreaterThanOrEqual(LEASES_UNMEASURED);
  });

  it('keeps a key within MAX_UNITS_PER_MINER however its connections\' leases are sized, one fast, one slow', () => {
    // A key's sessions are measured apart, and a session's speed changes, while its lease is refused only once it
    // holds as many leases as the asking session's size allows. So the most it can hold: for the i-th lease, the
    // largest lease of any size that still allows more than i.
    const sizes: ReturnType<typeof leaseSize>[] = [];
    for (let unitsPerSecond = 0.01; unitsPerSecond < 1_000; unitsPerSecond *= 1.01) sizes.push(leaseSize(record(1_000), unitsPerSecond * GIGA, BigInt(GIGA)));
    let most = 0;
    for (let i = 0; i < MAX_LEASES_PER_MINER; i++) most += Math.max(0, ...sizes.filter((size) => size.leases > i).map((size) => size.units));
    expect(most).toBeLessThanOrEqual(MAX_UNITS_PER_MINER);
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
