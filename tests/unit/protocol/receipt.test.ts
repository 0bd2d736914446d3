import { describe, expect, it } from 'vitest';
import {
  challengeBytes, exportPublicKey, generateSigningKeys, helloChallengeBytes, sign, signChallenge, signReceipt, verifyChallenge, verifyReceipt,
} from '../../../src/protocol/receipt.ts';
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

describe('challenges', async () => {
  const coordinator = await generateSigningKeys();
  const body = { coordinatorKey: await exportPublicKey(coordinator.publicKey), nonce: new Uint8Array(32).fill(3), heartbeatMs: 2_000 };
  const fingerprint = new Uint8Array(32).fill(0xab);

  it('verifies a challenge the coordinator signed over the fingerprint of its certificate', async () => {
    const signature = await signChallenge(coordinator.privateKey, body, fingerprint);
    expect(await verifyChallenge({ ...body, signature }, fingerprint)).toBe(true);
  });

  it('rejects it under another key, over another fingerprint, nonce or heartbeat, and unsigned', async () => {
    const signature = await signChallenge(coordinator.privateKey, body, fingerprint);
    const other = await generateSigningKeys();
    expect(await verifyChallenge({ ...body, signature: await signChallenge(other.privateKey, body, fingerprint) }, fingerprint)).toBe(false);
    expect(await verifyChallenge({ ...body, signature }, new Uint8Array(32).fill(0xac))).toBe(false);
    expect(await verifyChallenge({ ...body, nonce: new Uint8Array(32).fill(4), signature }, fingerprint)).toBe(false);
    expect(await verifyChallenge({ ...body, heartbeatMs: 2_001, signature }, fingerprint)).toBe(false);
    expect(await verifyChallenge(body, fingerprint)).toBe(false);
  });

  it('is not a hello signature: a miner signing its challenge cannot be replayed as the coordinator\'s, nor the reverse', async () => {
    expect(challengeBytes(body, fingerprint)).not.toEqual(helloChallengeBytes(body.nonce, body.coordinatorKey));
    expect(await verifyChallenge({ ...body, signature: await sign(coordinator.privateKey, helloChallengeBytes(body.nonce, body.coordinatorKey)) }, fingerprint)).toBe(false);
  });
});
