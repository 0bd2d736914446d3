// The miner's operand fetch against a real HTTP server: checked against the hash, kept within the budget, refused
// when the bytes are not the ones named.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError } from '../../../src/protocol/errors.ts';
import { OperandFeed, type OperandRef } from '../../../src/miner/operand-feed.ts';

const genuine = new Uint8Array(4096).map((_, i) => (i * 7) % 251);
const ref: OperandRef = { sha256: createHash('sha256').update(genuine).digest('hex'), bytes: genuine.byteLength, dtype: 'f32', shape: [32, 32] };

describe('operand feed', () => {
  let server: Server;
  let baseUrl = '';
  /** What the server sends for the next requests: the genuine bytes, tampered ones, or a refusal. */
  let mode: 'genuine' | 'tampered' | 'refuse' = 'genuine';
  const requests: { url: string; token: string | undefined }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push({ url: req.url ?? '', token: req.headers['x-ergon-operand-token'] as string | undefined });
      if (mode === 'refuse') {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":"no-lease","message":"no live lease"}}');
        return;
      }
      const body = Buffer.from(genuine);
      if (mode === 'tampered') body[100] ^= 1;
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    baseUrl = `http://127.0.0.1:${address.port}/`;
  });
  afterAll(() => {
    server.close();
  });
  const source = () => ({ baseUrl, token: 'session-token-0123456789' });

  it('fetches a blob once with the session token, checks it, and serves the next unit from memory', async () => {
    mode = 'genuine';
    requests.length = 0;
    const feed = new OperandFeed(1 << 20, undefined);
    const first = await feed.get(ref, source());
    expect(new Uint8Array(first)).toEqual(genuine);
    expect(await feed.get(ref, source())).toBe(first);
    expect(requests).toEqual([{ url: `/api/operands/${ref.sha256}`, token: 'session-token-0123456789' }]);
    expect(feed.bytesFetched).toBe(genuine.byteLength);
  });

  it('refuses a blob whose bytes do not hash to its name', async () => {
    mode = 'tampered';
    const feed = new OperandFeed(1 << 20, undefined);
    const refused = await feed.get(ref, source()).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(CodedError);
    expect((refused as CodedError).code).toBe('operand-hash-mismatch');
    // Nothing was kept: the genuine bytes, once served, are fetched and accepted.
    mode = 'genuine';
    expect(new Uint8Array(await feed.get(ref, source()))).toEqual(genuine);
  });

  it('reports a refused fetch with the coordinator\'s reason', async () => {
    mode = 'refuse';
    const feed = new OperandFeed(1 << 20, undefined);
    const refused = await feed.get(ref, source()).catch((err: unknown) => err);
    expect((refused as CodedError).code).toBe('operand-unavailable');
    expect((refused as CodedError).message).toMatch(/403.*no live lease/);
  });

  it('with caching off, fetches the blob for every unit', async () => {
    mode = 'genuine';
    requests.length = 0;
    const feed = new OperandFeed(0, undefined);
    await feed.get(ref, source());
    await feed.get(ref, source());
    expect(requests).toHaveLength(2);
  });

  it('takes a kept copy from the store before the network, and keeps what it fetched', async () => {
    mode = 'genuine';
    requests.length = 0;
    const kept = new Map<string, ArrayBuffer>();
    const store = { get: async (sha: string) => kept.get(sha), put: async (sha: string, bytes: ArrayBuffer) => void kept.set(sha, bytes) };
    await new OperandFeed(0, store).get(ref, source());
    expect(kept.has(ref.sha256)).toBe(true);
    // A new visit (a fresh feed, nothing in memory) reads the kept copy and fetches nothing.
    await new OperandFeed(0, store).get(ref, source());
    expect(requests).toHaveLength(1);
  });
});
