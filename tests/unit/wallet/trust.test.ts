// Whose receipts count: only those under a coordinator key the wallet trusts; forged ones are kept apart or refused.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Receipt, ReceiptBody } from '../../../src/protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, signReceipt, toHex } from '../../../src/protocol/receipt.ts';
import { balanceOf, checkReceipt, fetchCoordinatorKey, type TrustedCoordinator } from '../../../src/wallet/trust.ts';

const minerKey = new Uint8Array(32).fill(7);
const WALLET = toHex(minerKey);

function body(coordinatorKey: Uint8Array, microCredits: bigint, unitId = 'job.0'): ReceiptBody {
  return {
    unitId, jobId: 'job', kind: 'gemm', minerKey, coordinatorKey, ops: microCredits * 1000n, microCredits,
    gpuSeconds: 0.5, joules: 0, joulesSource: 'none', issuedAtMs: 1_700_000_000_000n,
  };
}

async function signer(): Promise<{ keys: CryptoKeyPair; key: Uint8Array<ArrayBuffer> }> {
  const keys = await generateSigningKeys();
  return { keys, key: await exportPublicKey(keys.publicKey) };
}

describe('receipt trust', async () => {
  const coordinator = await signer();
  const trusted = new Map<string, TrustedCoordinator>([
    [toHex(coordinator.key), { key: toHex(coordinator.key), url: 'https://coordinator.example/', pinnedAtMs: 0 }],
  ]);

  it('counts a receipt signed by a trusted coordinator key, naming the coordinator that vouches for it', async () => {
    const receipt = await signReceipt(coordinator.keys.privateKey, body(coordinator.key, 1_500_000n));
    expect(await checkReceipt(receipt, WALLET, trusted)).toMatchObject({ status: 'counted', coordinatorUrl: 'https://coordinator.example/' });
  });

  it('does not count 2,000,000 credits that verify under a key the forger made, but keeps them apart', async () => {
    const forger = await signer();
    const forged = await signReceipt(forger.keys.privateKey, body(forger.key, 2_000_000_000_000n, 'job.1'));
    const genuine = await signReceipt(coordinator.keys.privateKey, body(coordinator.key, 1_500_000n));
    const checks = [await checkReceipt(genuine, WALLET, trusted), await checkReceipt(forged, WALLET, trusted)];
    expect(checks[1]).toMatchObject({ status: 'unverified', reason: 'signed by a coordinator you have not added' });
    expect(balanceOf(checks)).toEqual({
      microCredits: 1_500_000n, ops: 1_500_000_000n, receipts: 1, unverified: 1, unverifiedMicroCredits: 2_000_000_000_000n, invalid: 0,
    });
    // The same receipt counts once the forger's key is trusted: the verdict follows the pins, not the file.
    const withForger = new Map(trusted).set(toHex(forger.key), { key: toHex(forger.key), url: 'https://forger.example/', pinnedAtMs: 1 });
    expect(await checkReceipt(forged, WALLET, withForger)).toMatchObject({ status: 'counted' });
  });

  it('refuses a receipt under the small-order identity key with a trivial signature, saying why', async () => {
    const identity = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
    const trivial: Receipt = { ...body(identity, 2_000_000_000_000n), signature: Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0)) };
    const trustingIdentity = new Map(trusted).set(toHex(identity), { key: toHex(identity), url: 'https://x.example/', pinnedAtMs: 0 });
    const checked = await checkReceipt(trivial, WALLET, trustingIdentity);
    expect(checked).toMatchObject({ status: 'refused', reason: 'its coordinator key is refused: it is a point of small order, whose secret anyone knows' });
    expect(balanceOf([checked])).toMatchObject({ microCredits: 0n, receipts: 0, unverified: 0, invalid: 1 });
  });

  it('refuses a receipt for another wallet, an altered one, and a record that is not a receipt', async () => {
    const receipt = await signReceipt(coordinator.keys.privateKey, body(coordinator.key, 1_000n));
    expect(await checkReceipt(receipt, toHex(new Uint8Array(32).fill(8)), trusted)).toMatchObject({ status: 'refused', reason: 'it names another wallet' });
    expect(await checkReceipt({ ...receipt, microCredits: 10n ** 12n }, WALLET, trusted)).toMatchObject({ status: 'refused', reason: 'its signature does not verify' });
    expect(await checkReceipt({ unitId: 'x' }, WALLET, trusted, 'record 3')).toMatchObject({ unitId: 'record 3', status: 'refused' });
  });
});

describe('fetchCoordinatorKey', () => {
  const key = 'ab'.repeat(32);
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const answers: Record<string, [number, string]> = {
        '/good/api/config': [200, JSON.stringify({ coordinatorPeerId: 'c', coordinatorKey: key })],
        '/broken/api/config': [500, 'oops'],
        '/html/api/config': [200, '<!doctype html>'],
        '/nokey/api/config': [200, JSON.stringify({ coordinatorKey: 'zz' })],
      };
      const [status, text] = answers[req.url ?? ''] ?? [404, ''];
      res.writeHead(status).end(text);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads the key a coordinator publishes at its own /api/config', async () => {
    expect(await fetchCoordinatorKey(`${base}/good/`)).toBe(key);
  });

  it('says why when a coordinator cannot tell its key', async () => {
    await expect(fetchCoordinatorKey(`${base}/broken/`)).rejects.toThrow(`${base}/broken/ answered HTTP 500 when asked for its key`);
    await expect(fetchCoordinatorKey(`${base}/html/`)).rejects.toThrow(/did not answer with JSON when asked for its key/);
    await expect(fetchCoordinatorKey(`${base}/nokey/`)).rejects.toThrow(/did not give a coordinator key: expected a 32-byte key in hex/);
  });
});
