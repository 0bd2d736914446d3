import { describe, expect, it } from 'vitest';
import { exportPublicKey, generateSigningKeys, signReceipt, verifyReceipt } from '../../../src/protocol/receipt.ts';
import type { ReceiptBody } from '../../../src/protocol/messages.ts';

describe('receipts', async () => {
  const coordinator = await generateSigningKeys();
  const body: ReceiptBody = {
    unitId: 'job.1.2', jobId: 'job', kind: 'gemm', minerKey: new Uint8Array(32).fill(7),
    coordinatorKey: await exportPublicKey(coordinator.publicKey), ops: 1_000_000n, microCredits: 1000n,
    gpuSeconds: 0.25, joules: 0, joulesSource: 'none', issuedAtMs: 1_700_000_000_000n,
  };

  it('verifies a receipt the coordinator signed', async () => {
    expect(await verifyReceipt(await signReceipt(coordinator.privateKey, body))).toBe(true);
  });

  it('rejects a receipt with altered credits, another miner, or another signer', async () => {
    const receipt = await signReceipt(coordinator.privateKey, body);
    expect(await verifyReceipt({ ...receipt, microCredits: 1001n })).toBe(false);
    expect(await verifyReceipt({ ...receipt, minerKey: new Uint8Array(32).fill(8) })).toBe(false);
    const forger = await generateSigningKeys();
    const forged = await signReceipt(forger.privateKey, body);
    expect(await verifyReceipt(forged)).toBe(false);
    expect(await verifyReceipt({ ...receipt, coordinatorKey: new Uint8Array(32) })).toBe(false);
  });

  it('rejects a receipt for any credits "signed" by the small-order identity key with R the identity and S = 0', async () => {
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const signature = new Uint8Array(64);
    signature.set(identity);
    expect(await verifyReceipt({ ...body, coordinatorKey: identity, microCredits: 2_000_000_000_000n, signature })).toBe(false);
  });
});
