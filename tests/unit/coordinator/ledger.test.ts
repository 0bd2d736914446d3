import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { LedgerError, openLedger } from '../../../src/coordinator/ledger/ledger.ts';
import { loadMigrations } from '../../../src/coordinator/ledger/migrations.ts';
import { SqliteLedger } from '../../../src/coordinator/ledger/sqlite.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { signReceipt, verifyReceipt } from '../../../src/protocol/receipt.ts';
import { creditEntry, ledgerConformance } from './ledger-conformance.ts';

const entry = creditEntry;
const RESULT = new Uint8Array([1, 2, 3, 4]);

ledgerConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ergon-ledger-'));
  return {
    open: () => openLedger({ backend: 'sqlite', path: join(dir, 'ledger.sqlite') }),
    cleanUp: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('sqlite ledger: jobs, results, reputation and failures', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-ledger-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('carries jobs stored before kinds were plug-ins over as gemm jobs, their single operand blob included', async () => {
    const path = join(dir, 'ledger.sqlite');
    const old = new Database(path);
    for (const migration of loadMigrations('sqlite').slice(0, 3)) old.exec(migration.sql);
    old.pragma('user_version = 3');
    old.prepare('INSERT INTO jobs (id, owner, m, n, k, operands_sha256, created_at_ms, finished_at_ms, precision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run('j1', 'key-1', 2, 3, 4, 'ab'.repeat(32), 5, null, 'f16');
    old.close();
    const ledger = new SqliteLedger(path);
    expect(await ledger.jobs()).toEqual([
      { id: 'j1', owner: 'key-1', kind: 'gemm', params: { m: 2, n: 3, k: 4, precision: 'f16' }, operands: ['ab'.repeat(32)], createdAtMs: 5, finishedAtMs: null },
    ]);
    await ledger.close();
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
