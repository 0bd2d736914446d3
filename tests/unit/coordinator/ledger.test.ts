import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteLedger } from '../../../src/coordinator/ledger/sqlite.ts';
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
