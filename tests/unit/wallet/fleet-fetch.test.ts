// The page's side of a fleet: a coordinator the person added vouches for its fleet only with a list that names that
// coordinator's own key and is signed by the fleet key it names; any other answer pins nobody and says why.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signFleetList, type SignedFleetList } from '../../../src/protocol/fleet-list.ts';
import { exportPublicKey, generateSigningKeys, toHex } from '../../../src/protocol/receipt.ts';
import { fetchFleet } from '../../../src/wallet/trust.ts';

async function signer(): Promise<{ keys: CryptoKeyPair; hex: string; key: Uint8Array<ArrayBuffer> }> {
  const keys = await generateSigningKeys();
  const key = await exportPublicKey(keys.publicKey);
  return { keys, key, hex: toHex(key) };
}

describe('fetchFleet', async () => {
  const fleet = await signer();
  const served = await signer(); // the coordinator the person added, whose key the page pinned from its origin
  const peer = await signer();
  const squatter = await signer();
  const members = [{ key: served.hex, url: 'https://a.example/' }, { key: peer.hex, url: 'https://b.example/' }];
  const honest = await signFleetList(fleet.keys.privateKey, fleet.key, members, 1_700_000_000_000);

  /** What GET /api/fleet answers next: a status and a body, written as is. */
  let answer: { status: number; body: string } = { status: 200, body: JSON.stringify(honest) };
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/api/fleet') return void res.writeHead(404).end();
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** The fleet the page would pin from `list`, or the sentence it refuses it with. */
  async function pinned(list: unknown, status = 200): Promise<{ members: string[] } | { refused: string }> {
    answer = { status, body: typeof list === 'string' ? list : JSON.stringify(list) };
    try {
      return { members: (await fetchFleet(url, served.hex, 5)).map((m) => m.url).sort() };
    } catch (err) {
      return { refused: (err as Error).message };
    }
  }

  it('pins every member of a list that names the serving coordinator and is signed by the fleet key it names', async () => {
    expect(await pinned(honest)).toEqual({ members: ['https://a.example/', 'https://b.example/'] });
    // A coordinator in no fleet: nothing to pin, and nothing wrong.
    expect(await pinned('', 404)).toEqual({ members: [] });
  });

  it('refuses a signed list that does not name the coordinator that served it', async () => {
    // Properly signed by its fleet, but the serving coordinator is not on it: it vouches for nobody it belongs with.
    const others = await signFleetList(fleet.keys.privateKey, fleet.key, [{ key: peer.hex, url: 'https://b.example/' }, { key: squatter.hex, url: 'https://squat.example/' }], 1);
    const result = await pinned(others);
    expect(result).toEqual({ refused: expect.stringMatching(/does not name .*own key/) as unknown });
    // Naming the serving coordinator's address under another key is not naming the coordinator.
    const byAddress = await signFleetList(fleet.keys.privateKey, fleet.key, [{ key: squatter.hex, url }], 1);
    expect(await pinned(byAddress)).toEqual({ refused: expect.stringMatching(/does not name .*own key/) as unknown });
  });

  it('refuses a list signed by a key other than the fleet key it names', async () => {
    const other = await signer();
    const signedByOther = await signFleetList(other.keys.privateKey, other.key, [...members, { key: squatter.hex, url: 'https://squat.example/' }], 1);
    const forged: SignedFleetList = { ...signedByOther, fleetKey: fleet.hex };
    expect(await pinned(forged)).toEqual({ refused: expect.stringMatching(/not signed by the fleet key it names/) as unknown });
    // A fleet "key" of small order with the trivial signature (R the identity, S = 0), which verifies under a lax check.
    const smallOrder = `01${'00'.repeat(31)}`;
    const trivial: SignedFleetList = { ...honest, fleetKey: smallOrder, signature: `01${'00'.repeat(63)}` };
    expect(await pinned(trivial)).toEqual({ refused: expect.stringMatching(/not signed by the fleet key it names/) as unknown });
  });

  it('refuses a list with a member added after it was signed', async () => {
    const added: SignedFleetList = { ...honest, coordinators: [...honest.coordinators, { key: squatter.hex, url: 'https://squat.example/' }] };
    expect(await pinned(added)).toEqual({ refused: expect.stringMatching(/not signed by the fleet key it names/) as unknown });
    const moved: SignedFleetList = { ...honest, coordinators: [{ key: served.hex, url: 'https://a.example/' }, { key: peer.hex, url: 'https://squat.example/' }] };
    expect(await pinned(moved)).toEqual({ refused: expect.stringMatching(/not signed by the fleet key it names/) as unknown });
  });

  it('refuses a malformed answer and an HTTP error with a sentence', async () => {
    for (const malformed of ['not json', '{}', JSON.stringify({ ...honest, signature: 'zz' }), JSON.stringify({ ...honest, coordinators: 'all' }), 'null']) {
      expect(await pinned(malformed), malformed).toEqual({ refused: expect.stringMatching(/did not give a fleet list: ./) as unknown });
    }
    expect(await pinned('{}', 500)).toEqual({ refused: expect.stringMatching(/answered HTTP 500 when asked for its fleet/) as unknown });
  });
});
