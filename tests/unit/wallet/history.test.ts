// Earnings by day and the wallet file's format: grouping, round trips and refusals.
import { describe, expect, it } from 'vitest';
import { generateSigningKeys, exportPublicKey, signReceipt, verifyReceipt } from '../../../src/protocol/receipt.ts';
import type { Receipt } from '../../../src/protocol/messages.ts';
import { earningsByDay } from '../../../src/wallet/history.ts';
import { parseWalletFile, receiptFromJson, receiptToJson, WALLET_FILE_FORMAT } from '../../../src/wallet/wallet-file.ts';

async function receiptAt(issuedAtMs: number, microCredits: bigint): Promise<Receipt> {
  const keys = await generateSigningKeys();
  const coordinatorKey = await exportPublicKey(keys.publicKey);
  return signReceipt(keys.privateKey, {
    unitId: `u-${issuedAtMs}`, jobId: 'job-1', kind: 'gemm', minerKey: new Uint8Array(32).fill(7), coordinatorKey,
    ops: 1_000_000n, microCredits, gpuSeconds: 0.5, joules: 0, joulesSource: 'none', issuedAtMs: BigInt(issuedAtMs),
  });
}

describe('earningsByDay', () => {
  it('sums receipts per local day, newest day first', async () => {
    const day1 = Date.UTC(2025, 0, 1, 10);
    const day2 = Date.UTC(2025, 0, 2, 10);
    const days = earningsByDay([await receiptAt(day1, 5n), await receiptAt(day1 + 1000, 7n), await receiptAt(day2, 1n)], 0);
    expect(days.map((d) => [d.day, d.receipts, d.microCredits])).toEqual([['2025-01-02', 1, 1n], ['2025-01-01', 2, 12n]]);
  });

  it('puts a receipt on the day of the given time zone', async () => {
    const lateUtc = Date.UTC(2025, 0, 1, 23, 30);
    expect(earningsByDay([await receiptAt(lateUtc, 1n)], 60)[0].day).toBe('2025-01-02');
  });
});

describe('wallet file', () => {
  it('round-trips a receipt through JSON with its signature still valid', async () => {
    const receipt = await receiptAt(Date.UTC(2025, 0, 1), 123n);
    const back = receiptFromJson(JSON.parse(JSON.stringify(receiptToJson(receipt)))) as Receipt;
    expect(back.microCredits).toBe(123n);
    expect(await verifyReceipt(back)).toBe(true);
  });

  it('refuses what is not a wallet file, saying where', () => {
    expect(parseWalletFile('not json')).toMatchObject({ ok: false });
    const wrong = parseWalletFile(JSON.stringify({ format: WALLET_FILE_FORMAT, version: 1, exportedAtMs: 0, publicKey: 'zz', privateKeyPkcs8: '', receipts: [] }));
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.error).toContain('publicKey');
  });
});
