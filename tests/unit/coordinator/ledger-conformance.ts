// What every ledger backend must do, whatever stores it: run by each backend's test with a way to open it. `open`
// opens the same store each time it is called within a test, so a close and a second open are a restart.
import { describe, expect, it } from 'vitest';
import type { Ledger, StoredJob } from '../../../src/coordinator/ledger/ledger.ts';
import { microCreditsFor } from '../../../src/work/kind.ts';

/** One credit per GFLOP: the rate does not matter to storage, only that it is an exact integer. */
const RATE = 1_000_000n;

export const creditEntry = (unitId: string, minerKey = 'aa', ops = 2_000_000_000n) => ({
  unitId, jobId: 'job', minerKey, ops, microCredits: microCreditsFor(ops, RATE), gpuSeconds: 0.5, createdAtMs: 1_700_000_000_000,
});

const RESULT = new Uint8Array([1, 2, 3, 4]);

export function ledgerConformance(backend: string, fresh: () => Promise<{ open: () => Promise<Ledger>; cleanUp: () => Promise<void> }>): void {
  describe(`${backend} ledger: conformance`, () => {
    const withStore = async (test: (open: () => Promise<Ledger>) => Promise<void>) => {
      const store = await fresh();
      try {
        await test(store.open);
      } finally {
        await store.cleanUp();
      }
    };

    it('credits a unit once, however often it is reported', () => withStore(async (open) => {
      const ledger = await open();
      expect(await ledger.credit(creditEntry('u1'), RESULT)).toBe(true);
      expect(await ledger.credit(creditEntry('u1'), RESULT)).toBe(false);
      expect(await ledger.credit(creditEntry('u1', 'bb'), RESULT)).toBe(false);
      expect(await ledger.credit(creditEntry('u2'), RESULT)).toBe(true);
      expect(await ledger.balance('aa')).toBe(4_000_000n);
      expect(await ledger.balance('bb')).toBe(0n);
      await ledger.close();
    }));

    it('credits a unit once when the same result is reported concurrently', () => withStore(async (open) => {
      const ledger = await open();
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => ledger.credit(creditEntry('u1', `m${i % 3}`), RESULT)));
      expect(outcomes.filter((credited) => credited)).toHaveLength(1);
      expect(await ledger.totals()).toEqual({ units: 1, ops: 2_000_000_000n, microCredits: 2_000_000n });
      await ledger.close();
    }));

    it('keeps credits across a restart, with 64-bit totals exact', () => withStore(async (open) => {
      const first = await open();
      await first.credit(creditEntry('big', 'aa', 2n ** 60n), RESULT);
      await first.close();
      const second = await open();
      expect(await second.totals()).toEqual({ units: 1, ops: 2n ** 60n, microCredits: microCreditsFor(2n ** 60n, RATE) });
      expect(await second.credit(creditEntry('big'), RESULT)).toBe(false);
      await second.close();
    }));

    it('keeps jobs of any kind, their verified results and reputation across a restart; deleting a job keeps its credits', () => withStore(async (open) => {
      const job: StoredJob = {
        id: 'j1', owner: 'key-1', kind: 'some-kind', params: { m: 2, label: 'x', nested: { ok: true } }, operands: ['ab'.repeat(32), 'cd'.repeat(32)], createdAtMs: 5, finishedAtMs: null,
      };
      const first = await open();
      await first.saveJob(job);
      await first.credit({ ...creditEntry('j1.0.0', 'cc'), jobId: 'j1' }, new Uint8Array([9, 8, 7, 6]));
      await first.updateReputation('cc', (r) => ({ ...r, score: -20, rejected: 2 }));
      await first.close();

      const second = await open();
      expect(await second.jobs()).toEqual([job]);
      expect(await second.unitResults('j1')).toEqual(new Map([['j1.0.0', { result: new Uint8Array([9, 8, 7, 6]), minerKey: 'cc' }]]));
      expect(await second.reputation('cc')).toMatchObject({ score: -20, rejected: 2 });
      expect(await second.reputation('dd')).toEqual({ minerKey: 'dd', score: 0, accepted: 0, rejected: 0, bannedUntilMs: 0 });
      await second.finishJob('j1', 77);
      expect((await second.jobs())[0].finishedAtMs).toBe(77);
      await second.deleteJob('j1');
      expect(await second.jobs()).toEqual([]);
      expect(await second.unitResults('j1')).toEqual(new Map());
      expect(await second.balance('cc')).toBe(2_000_000n);
      await second.close();
    }));

    it('loses no reputation update when verdicts come at once', () => withStore(async (open) => {
      const ledger = await open();
      await Promise.all(Array.from({ length: 25 }, () => ledger.updateReputation('ee', (r) => ({ ...r, accepted: r.accepted + 1, score: r.score + 1 }))));
      expect(await ledger.reputation('ee')).toMatchObject({ accepted: 25, score: 25 });
      await ledger.close();
    }));

    it('keeps each unit\'s energy as signed and groups verified work by miner and method, never mixing methods', () => withStore(async (open) => {
      const first = await open();
      const rapl = (joules: number) => ({ joules, joulesSource: 'rapl', uncertaintyJoules: joules * 0.05, aboveIdleJoules: null, refused: null });
      await first.credit({ ...creditEntry('e1', 'ff'), energy: rapl(3), wallSeconds: 1, adapter: 'nvidia RTX 4090' }, RESULT);
      await first.credit({ ...creditEntry('e2', 'ff'), energy: rapl(4), wallSeconds: 2, adapter: 'nvidia RTX 4090' }, RESULT);
      await first.credit({ ...creditEntry('e3', 'ff'), energy: { joules: 100, joulesSource: 'estimate', uncertaintyJoules: 100, aboveIdleJoules: null, refused: null } }, RESULT);
      await first.credit({ ...creditEntry('e4', 'ff'), energy: { joules: 0, joulesSource: 'none', uncertaintyJoules: 0, aboveIdleJoules: null, refused: 'claimed 0 J' } }, RESULT);
      await first.credit(creditEntry('e5', 'gg'), RESULT);
      await first.close();
      const second = await open();
      const rows = await second.efficiency();
      expect(rows.find((r) => r.minerKey === 'ff' && r.joulesSource === 'rapl')).toMatchObject({ adapter: 'nvidia RTX 4090', units: 2, ops: 4_000_000_000n, joules: 7, gpuSeconds: 1, wallSeconds: 3 });
      expect(rows.find((r) => r.minerKey === 'ff' && r.joulesSource === 'rapl')?.uncertaintyJoules).toBeCloseTo(Math.hypot(0.15, 0.2), 9);
      expect(rows.find((r) => r.minerKey === 'ff' && r.joulesSource === 'estimate')).toMatchObject({ units: 1, joules: 100 });
      expect(rows.find((r) => r.minerKey === 'ff' && r.joulesSource === 'none')).toMatchObject({ units: 1, joules: 0 });
      expect(rows.find((r) => r.minerKey === 'gg')).toMatchObject({ adapter: '', joulesSource: 'none', units: 1, wallSeconds: 0 });
      expect(rows).toHaveLength(4);
      await second.close();
    }));
  });
}
