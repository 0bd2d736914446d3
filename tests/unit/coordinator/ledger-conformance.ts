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
/** A bond of none: an audit that passes settles every pending credit. */
const NO_BOND = () => 0;

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

    it('gives back a credit as stored, receipt kind and energy included, across a restart, and settled credits too', () => withStore(async (open) => {
      const first = await open();
      const energy = { joules: 3.5, joulesSource: 'rapl', uncertaintyJoules: 0.25, aboveIdleJoules: 1.5, refused: null };
      const stored = { ...creditEntry('k1', 'aa', 2n ** 60n), energy, receiptKind: 'gemm-f16' };
      await first.credit(stored, RESULT);
      await first.hold({ ...creditEntry('k2', 'bb'), receiptKind: 'onnx' }, RESULT);
      await first.settlePending('bb', 'k2', NO_BOND);
      await first.close();
      const second = await open();
      expect(await second.creditOf('k1')).toEqual(stored);
      expect(await second.creditOf('k2')).toMatchObject({ minerKey: 'bb', receiptKind: 'onnx' });
      expect(await second.creditOf('nothing')).toBeUndefined();
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

    it('holds credits as pending, unpaid, until an audit settles them: then paid once, results kept, across a restart', () => withStore(async (open) => {
      const job: StoredJob = { id: 'job', owner: 'key-1', kind: 'some-kind', params: {}, operands: [], createdAtMs: 1, finishedAtMs: null };
      const first = await open();
      await first.saveJob(job);
      const rapl = { joules: 3, joulesSource: 'rapl', uncertaintyJoules: 0.1, aboveIdleJoules: 2, refused: null };
      expect(await first.hold({ ...creditEntry('p1', 'aa'), energy: rapl, wallSeconds: 1.5, adapter: 'gpu', receiptKind: 'onnx-webgpu' }, new Uint8Array([1]))).toBe(true);
      expect(await first.hold(creditEntry('p1', 'aa'), new Uint8Array([9]))).toBe(false);
      expect(await first.hold(creditEntry('p1', 'bb'), new Uint8Array([9]))).toBe(false);
      expect(await first.hold({ ...creditEntry('p2', 'aa'), createdAtMs: 1_700_000_000_001 }, new Uint8Array([2]))).toBe(true);
      expect(await first.hold(creditEntry('q1', 'bb'), new Uint8Array([3]))).toBe(true);
      // A unit already credited cannot be held as well.
      await first.credit(creditEntry('c1', 'aa'), RESULT);
      expect(await first.hold(creditEntry('c1', 'aa'), RESULT)).toBe(false);
      expect(await first.balance('aa')).toBe(2_000_000n);
      expect((await first.totals()).units).toBe(1);
      await first.close();

      const second = await open();
      const pending = await second.pendingCredits({ minerKey: 'aa' });
      expect(pending.map((p) => p.unitId)).toEqual(['p1', 'p2']);
      expect(pending[0]).toMatchObject({ jobId: 'job', ops: 2_000_000_000n, microCredits: 2_000_000n, energy: rapl, wallSeconds: 1.5, adapter: 'gpu', receiptKind: 'onnx-webgpu', result: new Uint8Array([1]) });
      // One held without a receipt kind gets its job's kind's default when settled.
      expect(pending[1].receiptKind).toBeUndefined();
      expect((await second.pendingCredits({ jobId: 'job' })).map((p) => p.unitId).sort()).toEqual(['p1', 'p2', 'q1']);
      expect(await second.auditsPassed('aa')).toBe(0);

      const settled = await second.settlePending('aa', 'p2', NO_BOND);
      expect(settled.map((p) => p.unitId)).toEqual(['p1', 'p2']);
      expect(await second.auditsPassed('aa')).toBe(1);
      expect(await second.pendingCredits({ minerKey: 'aa' })).toEqual([]);
      expect(await second.balance('aa')).toBe(6_000_000n);
      expect(await second.totals()).toEqual({ units: 3, ops: 6_000_000_000n, microCredits: 6_000_000n });
      expect((await second.unitResults('job')).get('p2')).toEqual({ result: new Uint8Array([2]), minerKey: 'aa' });
      expect((await second.efficiency()).find((r) => r.minerKey === 'aa' && r.joulesSource === 'rapl')).toMatchObject({ units: 1, joules: 3, adapter: 'gpu' });
      // Settled is credited: never held, settled or paid again.
      expect(await second.hold(creditEntry('p1', 'aa'), RESULT)).toBe(false);
      expect(await second.settlePending('aa', 'p2', NO_BOND)).toEqual([]);
      expect(await second.auditsPassed('aa')).toBe(2);
      expect(await second.balance('bb')).toBe(0n);
      await second.close();
    }));

    it('forfeits all of a miner\'s pending credits on a failed audit: recorded, never paid, the unit free to be done again', () => withStore(async (open) => {
      const ledger = await open();
      await ledger.settlePending('aa', 'none', NO_BOND);
      await ledger.settlePending('aa', 'none', NO_BOND);
      expect(await ledger.auditsPassed('aa')).toBe(2);
      await ledger.hold(creditEntry('f1', 'aa'), RESULT);
      await ledger.hold(creditEntry('f2', 'aa', 3_000_000_000n), RESULT);
      await ledger.hold(creditEntry('g1', 'bb'), RESULT);
      const forfeited = await ledger.forfeitPending('aa', 'audit: output y[3] is 0, the re-run gives 1', 5);
      expect(forfeited.map((p) => p.unitId)).toEqual(['f1', 'f2']);
      expect(await ledger.forfeited('aa')).toBe(5_000_000n);
      expect(await ledger.auditsPassed('aa')).toBe(0);
      expect(await ledger.pendingCredits({ minerKey: 'aa' })).toEqual([]);
      expect(await ledger.balance('aa')).toBe(0n);
      expect(await ledger.totals()).toEqual({ units: 0, ops: 0n, microCredits: 0n });
      // Another miner's pending credits are untouched; a forfeited unit done again by someone else is paid to them.
      expect((await ledger.pendingCredits({ minerKey: 'bb' })).map((p) => p.unitId)).toEqual(['g1']);
      expect(await ledger.hold(creditEntry('f1', 'cc'), RESULT)).toBe(true);
      await ledger.settlePending('cc', 'f1', NO_BOND);
      expect(await ledger.balance('cc')).toBe(2_000_000n);
      // Read back by the key that earned it, and only by it.
      expect((await ledger.creditsOf('cc', ['f1', 'f2', 'nothing'])).map((c) => c.unitId)).toEqual(['f1']);
      expect(await ledger.creditsOf('aa', ['f1'])).toEqual([]);
      expect(await ledger.forfeited('cc')).toBe(0n);
      // Forfeited twice over (a unit forfeited, done again by the same cheat and forfeited again): both recorded.
      await ledger.hold(creditEntry('f2', 'aa', 3_000_000_000n), RESULT);
      await ledger.forfeitPending('aa', 'again', 6);
      expect(await ledger.forfeited('aa')).toBe(8_000_000n);
      // What a miner back from a dropped link is told: only its own forfeited units, each once.
      const told = await ledger.forfeitedUnits('aa', ['f1', 'f2', 'g1', 'nothing']);
      expect(told.sort((a, b) => a.unitId.localeCompare(b.unitId))).toEqual([{ unitId: 'f1', microCredits: 2_000_000n }, { unitId: 'f2', microCredits: 3_000_000n }]);
      expect(await ledger.forfeitedUnits('cc', ['f1'])).toEqual([]);
      expect(await ledger.forfeitedUnits('aa', [])).toEqual([]);
      await ledger.close();
    }));

    it('keeps a miner\'s newest pending credits as its bond when an audit passes: the audited unit and older ones are paid', () => withStore(async (open) => {
      const first = await open();
      await first.settlePending('aa', 'none', NO_BOND);
      // b0 oldest ... b5 newest; b4 is audited and passes, with 2 audits now passed in a row and a bond of 3 for it.
      for (let i = 0; i < 6; i++) await first.hold({ ...creditEntry(`b${i}`, 'aa'), createdAtMs: 1_700_000_000_000 + i }, RESULT);
      await first.hold(creditEntry('x0', 'bb'), RESULT);
      const seen: number[] = [];
      const settled = await first.settlePending('aa', 'b4', (passed) => {
        seen.push(passed);
        return 3;
      });
      expect(seen).toEqual([2]);
      expect(settled.map((p) => p.unitId)).toEqual(['b0', 'b1', 'b4']);
      expect(await first.balance('aa')).toBe(6_000_000n);
      await first.close();
      // The bond stays pending, across a restart: the newest three but the audited one.
      const second = await open();
      expect((await second.pendingCredits({ minerKey: 'aa' })).map((p) => p.unitId)).toEqual(['b2', 'b3', 'b5']);
      expect((await second.pendingCredits({ minerKey: 'bb' })).map((p) => p.unitId)).toEqual(['x0']);
      expect(await second.auditsPassed('aa')).toBe(2);
      // A bond larger than what is pending keeps all the others; the audited unit is paid however large the bond.
      expect((await second.settlePending('aa', 'b5', () => 40)).map((p) => p.unitId)).toEqual(['b5']);
      // A failed audit forfeits the bond too.
      expect((await second.forfeitPending('aa', 'audit failed', 9)).map((p) => p.unitId)).toEqual(['b2', 'b3']);
      expect(await second.forfeited('aa')).toBe(4_000_000n);
      expect(await second.totals()).toEqual({ units: 4, ops: 8_000_000_000n, microCredits: 8_000_000n });
      await second.close();
    }));

    it('settles each pending credit once when audits of one miner pass at once', () => withStore(async (open) => {
      const ledger = await open();
      for (let i = 0; i < 10; i++) await ledger.hold(creditEntry(`s${i}`, 'aa'), RESULT);
      const rounds = await Promise.all(Array.from({ length: 5 }, (_, i) => ledger.settlePending('aa', `s${i}`, NO_BOND)));
      expect(rounds.flat().map((p) => p.unitId).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `s${i}`).sort());
      expect(await ledger.balance('aa')).toBe(20_000_000n);
      expect(await ledger.auditsPassed('aa')).toBe(5);
      await ledger.close();
    }));
  });
}
