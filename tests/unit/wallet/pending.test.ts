// Credits pending an audit, as the page totals them: well-formed records only, exact integers, never mixed with receipts.
import { describe, expect, it } from 'vitest';
import { pendingTotal } from '../../../src/wallet/pending.ts';

const record = (unitId: string, microCredits: bigint) => ({
  unitId, jobId: 'job', kind: 'onnx', ops: microCredits * 1000n, microCredits, coordinatorKey: 'ab'.repeat(32), receivedAtMs: 1_700_000_000_000,
});

describe('pending credits', () => {
  it('sums the well-formed pending records exactly and skips anything else', () => {
    expect(pendingTotal([])).toEqual({ units: 0, microCredits: 0n });
    const big = 2n ** 62n + 1n;
    expect(pendingTotal([record('job.0', 4_201_760n), record('job.1', big)])).toEqual({ units: 2, microCredits: big + 4_201_760n });
    // A record with a float, a negative amount, a bad key or no unit: not counted.
    const junk = [
      { ...record('job.2', 1n), microCredits: 1.5 },
      record('job.3', -5n),
      { ...record('job.4', 1n), coordinatorKey: 'not hex' },
      { ...record('job.5', 1n), unitId: undefined },
      null,
      'pending',
    ];
    expect(pendingTotal([record('job.0', 7n), ...junk])).toEqual({ units: 1, microCredits: 7n });
  });
});
