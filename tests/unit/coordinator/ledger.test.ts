import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { LedgerError, SqliteLedger } from '../../../src/coordinator/ledger/sqlite.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { microCreditsFor } from '../../../src/coordinator/pay.ts';
import { signReceipt, verifyReceipt } from '../../../src/protocol/receipt.ts';

const entry = (unitId: string, minerKey = 'aa', ops = 2_000_000_000n) => ({
  unitId, jobId: 'job', minerKey, ops, microCredits: microCreditsFor(ops), gpuSeconds: 0.5, createdAtMs: 1_700_000_000_000,
});

const RESULT = new Uint8Array([1, 2, 3, 4]);

describe('sqlite ledger', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-ledger-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('credits a unit once, however often it is reported', async () => {
    const ledger = new SqliteLedger(join(dir, 'ledger.sqlite'));
    expect(await ledger.credit(entry('u1'), RESULT)).toBe(true);
    expect(await ledger.credit(entry('u1'), RESULT)).toBe(false);
    expect(await ledger.credit(entry('u1', 'bb'), RESULT)).toBe(false);
    expect(await ledger.credit(entry('u2'), RESULT)).toBe(true);
    expect(await ledger.balance('aa')).toBe(4_000_000n);
    expect(await ledger.balance('bb')).toBe(0n);
    await ledger.close();
  });

  it('keeps credits across a restart, with 64-bit totals exact', async () => {
    const path = join(dir, 'ledger.sqlite');
    const first = new SqliteLedger(path);
    await first.credit(entry('big', 'aa', 2n ** 60n), RESULT);
    await first.close();
    const second = new SqliteLedger(path);
    expect(await second.totals()).toEqual({ units: 1, ops: 2n ** 60n, microCredits: microCreditsFor(2n ** 60n) });
    expect(await second.credit(entry('big'), RESULT)).toBe(false);
    await second.close();
  });
});

describe('sqlite ledger: jobs, results, reputation and failures', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-ledger-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const job = { id: 'j1', owner: 'key-1', m: 2, n: 3, k: 4, precision: 'f16' as const, operandsSha256: 'ab'.repeat(32), createdAtMs: 5, finishedAtMs: null };

  it('keeps jobs, their verified results and reputation across a restart; deleting a job keeps its credits', async () => {
    const path = join(dir, 'ledger.sqlite');
    const first = new SqliteLedger(path);
    await first.saveJob(job);
    await first.credit({ ...entry('j1.0.0', 'cc'), jobId: 'j1' }, new Uint8Array([9, 8, 7, 6]));
    await first.updateReputation('cc', (r) => ({ ...r, score: -20, rejected: 2 }));
    await first.close();

    const second = new SqliteLedger(path);
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
  });

  it('says the disk is full, writes nothing half-way, and stays readable', async () => {
    const path = join(dir, 'ledger.sqlite');
    const ledger = new SqliteLedger(path, { maxPages: 40 });
    const big = new Uint8Array(16 * 1024);
    let credited = 0;
    let failure: unknown;
    for (let i = 0; i < 100 && !failure; i++) {
      try {
        if (await ledger.credit(entry(`u${i}`), big)) credited++;
      } catch (err) {
        failure = err;
      }
    }
    expect(failure).toBeInstanceOf(LedgerError);
    expect(failure).toMatchObject({ code: 'storage-full' });
    expect(String((failure as Error).message)).toMatch(/disk .* is full/);
    expect((await ledger.totals()).units).toBe(credited);
    await ledger.close();
    const reopened = new SqliteLedger(path);
    expect((await reopened.totals()).units).toBe(credited);
    expect((await reopened.unitResults('job')).size).toBe(credited);
    await reopened.close();
  });

  it('says the ledger is busy when another process holds the write lock, and works once it is released', async () => {
    const path = join(dir, 'ledger.sqlite');
    const ledger = new SqliteLedger(path, { busyTimeoutMs: 100 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await expect(ledger.credit(entry('u1'), RESULT)).rejects.toMatchObject({ code: 'storage-busy' });
    other.exec('ROLLBACK');
    other.close();
    expect(await ledger.credit(entry('u1'), RESULT)).toBe(true);
    await ledger.close();
  });
});

describe('coordinator signing key', () => {
  it('is made once, kept owner-only, and signs verifiable receipts after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ergon-key-'));
    try {
      const first = await loadOrCreateSigningKey(dir);
      const mode = (await stat(join(dir, 'coordinator-key.pkcs8'))).mode & 0o777;
      expect(mode).toBe(0o600);
      const again = await loadOrCreateSigningKey(dir);
      expect(again.publicKey).toEqual(first.publicKey);
      const receipt = await signReceipt(again.privateKey, {
        unitId: 'u', jobId: 'j', kind: 'gemm', minerKey: new Uint8Array(32), coordinatorKey: first.publicKey,
        ops: 1n, microCredits: 0n, gpuSeconds: 0, joules: 0, joulesSource: 'none', issuedAtMs: 1n,
      });
      expect(await verifyReceipt(receipt)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
