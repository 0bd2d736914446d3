// A wallet that pins a fleet's key counts receipts from every coordinator on the fleet's signed list, and from no
// coordinator a forged, altered or foreign list adds.
import { describe, expect, it } from 'vitest';
import type { ReceiptBody } from '../../../src/protocol/messages.ts';
import { signFleetList } from '../../../src/protocol/fleet-list.ts';
import { exportPublicKey, generateSigningKeys, signReceipt, toHex } from '../../../src/protocol/receipt.ts';
import { checkReceipt, fleetTrust, type TrustedCoordinator } from '../../../src/wallet/trust.ts';

const minerKey = new Uint8Array(32).fill(9);
const WALLET = toHex(minerKey);

async function signer() {
  const keys = await generateSigningKeys();
  return { keys, key: await exportPublicKey(keys.publicKey) };
}

const body = (coordinatorKey: Uint8Array): ReceiptBody => ({
  unitId: 'job.0', jobId: 'job', kind: 'gemm', minerKey, coordinatorKey, ops: 2_000_000_000n, microCredits: 2_000_000n,
  gpuSeconds: 0.5, joules: 0, joulesSource: 'none', issuedAtMs: 1_700_000_000_000n,
});

describe('fleet trust', async () => {
  const fleet = await signer();
  const [a, b] = [await signer(), await signer()];
  const list = await signFleetList(fleet.keys.privateKey, fleet.key, [
    { key: toHex(a.key), url: 'https://a.example/' }, { key: toHex(b.key), url: 'https://b.example/' },
  ], 1_700_000_000_000);
  const trustedBy = async (answer: unknown, pinned = toHex(fleet.key)) =>
    new Map<string, TrustedCoordinator>((await fleetTrust(pinned, answer, 5)).map((c) => [c.key, c]));

  it('counts a receipt from any coordinator on the list the pinned fleet key signed', async () => {
    const trusted = await trustedBy(list);
    expect([...trusted.values()].map((c) => c.url).sort()).toEqual(['https://a.example/', 'https://b.example/']);
    const receipt = await signReceipt(b.keys.privateKey, body(b.key));
    expect(await checkReceipt(receipt, WALLET, trusted)).toMatchObject({ status: 'counted', coordinatorUrl: 'https://b.example/' });
  });

  it('trusts nobody from a list with a coordinator slipped in, one signed by another fleet, or one malformed', async () => {
    const squatter = await signer();
    const altered = { ...list, coordinators: [...list.coordinators, { key: toHex(squatter.key), url: 'https://squat.example/' }] };
    const other = await signer();
    const foreign = await signFleetList(other.keys.privateKey, other.key, [{ key: toHex(squatter.key), url: 'https://squat.example/' }], 1);
    expect((await trustedBy(altered)).size).toBe(0);
    expect((await trustedBy(foreign)).size).toBe(0);
    expect((await trustedBy({ ...list, signature: 'zz' })).size).toBe(0);
    const receipt = await signReceipt(squatter.keys.privateKey, body(squatter.key));
    expect(await checkReceipt(receipt, WALLET, await trustedBy(altered))).toMatchObject({ status: 'unverified' });
  });
});
