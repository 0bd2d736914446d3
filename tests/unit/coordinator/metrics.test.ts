// The metrics module on its own: audits move credits from pending to released or forfeited, per miner and in
// Prometheus, and tallies stay bounded by reason.
import { describe, expect, it } from 'vitest';
import { CoordinatorMetrics } from '../../../src/coordinator/metrics.ts';
import { parseExposition, sampleValue } from '../../helpers/prometheus.ts';

const sources = { minersConnected: () => 2, connections: () => 3, queueDepth: async () => new Map([['audited', 7]]) };

describe('CoordinatorMetrics', () => {
  it('holds credits as pending, releases them on a passed audit and forfeits them on a failed one', async () => {
    const metrics = new CoordinatorMetrics(['audited'], sources);
    metrics.verified({ kind: 'audited', minerKey: 'aa', ops: 10n, microCredits: 500n, verifySeconds: 0.5, joules: 0, joulesSource: 'none' });
    metrics.held({ kind: 'audited', minerKey: 'aa', microCredits: 500n });
    metrics.held({ kind: 'audited', minerKey: 'bb', microCredits: 300n });
    expect(metrics.totals.pendingMicroCredits).toBe(800n);
    metrics.audited({ kind: 'audited', minerKey: 'aa', outcome: 'passed', releasedMicroCredits: 500n, forfeitedMicroCredits: 0n });
    metrics.audited({ kind: 'audited', minerKey: 'bb', outcome: 'failed', reason: 'audit-mismatch', releasedMicroCredits: 0n, forfeitedMicroCredits: 300n });
    expect(metrics.totals).toMatchObject({ pendingMicroCredits: 0n, forfeitedMicroCredits: 300n, auditsPassed: 1, auditsFailed: 1 });
    const bb = metrics.activityOf('bb');
    expect(bb?.forfeitedMicroCredits).toBe(300n);
    expect([...(bb?.failedAudits.values() ?? [])]).toMatchObject([{ reason: 'audit-mismatch', count: 1 }]);

    const samples = parseExposition((await metrics.exposition()).body);
    expect(sampleValue(samples, 'ergon_audits_total', { kind: 'audited', outcome: 'passed' })).toBe(1);
    expect(sampleValue(samples, 'ergon_audits_total', { kind: 'audited', outcome: 'failed' })).toBe(1);
    expect(sampleValue(samples, 'ergon_credits_held_microcredits_total', { kind: 'audited' })).toBe(800);
    expect(sampleValue(samples, 'ergon_credits_forfeited_microcredits_total', { kind: 'audited' })).toBe(300);
    expect(sampleValue(samples, 'ergon_credits_issued_microcredits_total', { kind: 'audited' })).toBe(500);
    expect(sampleValue(samples, 'ergon_queue_units', { kind: 'audited' })).toBe(7);
    expect(sampleValue(samples, 'ergon_miners_connected')).toBe(2);
    expect(sampleValue(samples, 'ergon_connections')).toBe(3);
  });

  it('counts a miner\'s energy per source and only where it was measured', () => {
    const metrics = new CoordinatorMetrics(['k'], sources);
    metrics.verified({ kind: 'k', minerKey: 'aa', ops: 4_000_000_000n, microCredits: 1n, verifySeconds: 0, joules: 0, joulesSource: 'none' });
    metrics.verified({ kind: 'k', minerKey: 'aa', ops: 2_000_000_000n, microCredits: 1n, verifySeconds: 0, joules: 4, joulesSource: 'probe' });
    expect([...(metrics.activityOf('aa')?.energy ?? [])]).toEqual([['probe', { ops: 2_000_000_000n, joules: 4 }]]);
    expect(metrics.activityOf('aa')?.opsVerified).toBe(6_000_000_000n);
  });

  it('forgets a miner\'s speed window after a minute', () => {
    let nowMs = 1_000_000;
    const metrics = new CoordinatorMetrics(['k'], sources, () => nowMs);
    metrics.verified({ kind: 'k', minerKey: 'aa', ops: 5n, microCredits: 1n, verifySeconds: 0, joules: 0, joulesSource: 'none' });
    expect(metrics.activityOf('aa')?.recent).toHaveLength(1);
    nowMs += 61_000;
    expect(metrics.activityOf('aa')?.recent).toHaveLength(0);
  });
});
