// Pure trust policy: reputation and bans, plausible GPU times, token buckets.
import { describe, expect, it } from 'vitest';
import { checkGpuSeconds, MAX_PLAUSIBLE_OPS_PER_SECOND } from '../../../src/coordinator/claims.ts';
import { TokenBucket } from '../../../src/coordinator/rate-limit.ts';
import { BAN_MS, isBanned, MAX_SCORE, nextReputation } from '../../../src/coordinator/reputation.ts';
import type { Reputation } from '../../../src/coordinator/ledger/ledger.ts';

const fresh = (): Reputation => ({ minerKey: 'aa', score: 0, accepted: 0, rejected: 0, bannedUntilMs: 0 });
const apply = (r: Reputation, outcomes: ('accepted' | 'rejected')[], nowMs = 1_000): Reputation =>
  outcomes.reduce((acc, o) => nextReputation(acc, o, nowMs), r);

describe('reputation', () => {
  it('bans a fresh key on its third rejection, for a day', () => {
    const two = apply(fresh(), ['rejected', 'rejected']);
    expect(isBanned(two, 1_000)).toBe(false);
    const three = apply(two, ['rejected']);
    expect(isBanned(three, 1_000)).toBe(true);
    expect(three.bannedUntilMs).toBe(1_000 + BAN_MS);
    expect(isBanned(three, 1_000 + BAN_MS)).toBe(false);
  });

  it('lets a long good record absorb a few mistakes, but never more than its capped score allows', () => {
    const veteran = apply(fresh(), Array(500).fill('accepted'));
    expect(veteran.score).toBe(MAX_SCORE);
    expect(isBanned(apply(veteran, Array(7).fill('rejected')), 1_000)).toBe(false);
    expect(isBanned(apply(veteran, Array(8).fill('rejected')), 1_000)).toBe(true);
  });

  it('after a ban ends, one more offence bans again', () => {
    const banned = apply(fresh(), ['rejected', 'rejected', 'rejected']);
    const later = banned.bannedUntilMs + 1;
    expect(isBanned(nextReputation(banned, 'accepted', later), later)).toBe(false);
    expect(isBanned(nextReputation(banned, 'rejected', later), later)).toBe(true);
  });
});

describe('claimed GPU time', () => {
  const bigUnitOps = 2n * 256n * 256n * 16_384n;
  it('accepts honest times and refuses zero, faster than any device, or longer than the lease has existed', () => {
    expect(checkGpuSeconds(0.05, bigUnitOps, 2)).toBeNull();
    expect(checkGpuSeconds(0.000_001, 2n * 16n ** 3n, 0.01)).toBeNull();
    expect(checkGpuSeconds(0, 2n, 1)?.code).toBe('implausible-claim');
    expect(checkGpuSeconds(1e-6, 10n ** 12n, 1)?.message).toMatch(/no device is that fast/);
    expect(checkGpuSeconds(Number(10n ** 12n) / MAX_PLAUSIBLE_OPS_PER_SECOND, 10n ** 12n, 1)).toBeNull();
    expect(checkGpuSeconds(3.5, bigUnitOps, 2)?.message).toMatch(/only 2.000 s passed/);
    expect(checkGpuSeconds(2.01, bigUnitOps, 2)).toBeNull();
    // The review's cheats: a claim no timer measured, and 3x the wall time between lease and result.
    expect(checkGpuSeconds(1e-9, 134_217_728n, 1)?.code).toBe('implausible-claim');
    expect(checkGpuSeconds(5e-324, 134_217_728n, 1)?.code).toBe('implausible-claim');
    expect(checkGpuSeconds(0.9, bigUnitOps, 0.3)?.message).toMatch(/only 0.300 s passed/);
    expect(checkGpuSeconds(2.9, bigUnitOps, 2)?.code).toBe('implausible-claim');
  });
});

describe('token bucket', () => {
  it('allows a burst, then refills at its rate', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 3 }, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
    expect(bucket.retryAfterMs()).toBe(100);
    expect(bucket.take(50)).toBe(false);
    expect(bucket.take(100)).toBe(true);
    expect(bucket.take(10_000) && bucket.take(10_000) && bucket.take(10_000)).toBe(true);
    expect(bucket.take(10_000)).toBe(false);
  });
});
