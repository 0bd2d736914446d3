// The miners' WebSocket: the same protocol and session as the data channel, paid alike, and bounded alike.
import { createServer } from 'node:http';
import { encode } from '@msgpack/msgpack';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { loadPeerJs } from '../../src/coordinator/peers.ts';
import { CoordinatorLink, type WebSocketClass } from '../../src/miner/coordinator-link.ts';
import { HELLO_TIMEOUT_MS } from '../../src/coordinator/miner-session.ts';
import { MAX_SOCKET_MESSAGE_BYTES, MINER_SOCKET_PATH } from '../../src/coordinator/miner-socket.ts';
import { frames, Reassembler } from '../../src/protocol/framing.ts';
import { parseCoordinatorMessage } from '../../src/protocol/codec.ts';
import { toHex } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

/** A plain WebSocket client of the miner socket, that records how it ends. */
async function rawSocket(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const target = new URL(MINER_SOCKET_PATH, url);
  target.protocol = 'ws:';
  const ws = new WebSocket(target, { headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return { ws, closed };
}

/** The refusal a socket's upgrade meets: its HTTP status, or 'open'. */
async function upgradeOutcome(url: string, headers: Record<string, string> = {}): Promise<string> {
  try {
    const { ws } = await rawSocket(url, headers);
    ws.terminate();
    return 'open';
  } catch (err) {
    return (err as Error).message;
  }
}

describe("the miners' WebSocket", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ handshakeLimits: { perAddress: 3 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('mines a job over the same protocol and session: the product is right and every unit is paid once', async () => {
    const [m, n, k] = [512, 512, 32];
    const a = randomMatrix(m * k, 91);
    const b = randomMatrix(k * n, 92);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    const miner = await ScriptedMiner.connect(stack.url, 1, 'websocket');
    expect(miner.link.transport).toBe('websocket');
    await miner.hello();
    let done = false;
    const mining = miner.mineHonestly(() => done);
    await waitForJob(stack.url, job.id);
    done = true;
    const receipts = await mining;
    miner.close();
    expect(receipts).toHaveLength(job.unitsTotal);
    expect(new Set(receipts.map((r) => r.receipt.unitId)).size).toBe(job.unitsTotal);
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    expect(await stack.ledger.balance(toHex(miner.minerKey))).toBe((await stack.ledger.totals()).microCredits);
  });

  it('refuses a page of another origin, as the HTTP API does, and takes its own origin and programs', async () => {
    const own = new URL(stack.url).origin;
    expect(await upgradeOutcome(stack.url, { origin: 'https://evil.example' })).toBe('HTTP 403');
    expect(await upgradeOutcome(stack.url, { origin: own })).toBe('open');
    expect(await upgradeOutcome(stack.url)).toBe('open');
  });

  it('answers garbage and unauthenticated requests with errors, refuses an oversized frame and a large message before hello', async () => {
    const { ws, closed } = await rawSocket(stack.url);
    const replies: { type: string; code?: string }[] = [];
    const reassembler = new Reassembler();
    ws.on('message', (data: Buffer) => {
      const whole = reassembler.push(new Uint8Array(data), Date.now());
      if (whole.ok && whole.value) {
        const parsed = parseCoordinatorMessage(whole.value);
        if (parsed.ok) replies.push(parsed.value as { type: string; code?: string });
      }
    });
    const waitFor = async (count: number) => {
      for (let i = 0; i < 200 && replies.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    };
    await waitFor(1);
    expect(replies[0]?.type).toBe('challenge');
    ws.send(new Uint8Array([1, 2, 3]));
    ws.send('not a frame');
    for (const frame of frames(1, encode({ type: 'work-request', v: PROTOCOL_VERSION }))) ws.send(frame);
    // Declares a 1 MiB message before hello: refused on its first frame, before any buffer is made.
    ws.send([...frames(2, new Uint8Array(1024 * 1024))][0]);
    await waitFor(5);
    expect(replies.slice(1).map((r) => r.code)).toEqual(['malformed-frame', 'malformed-frame', 'not-authenticated', 'message-too-large']);
    // A WebSocket message larger than any frame is not read: the socket is closed (1009, message too big).
    ws.send(new Uint8Array(MAX_SOCKET_MESSAGE_BYTES + 1));
    expect((await closed).code).toBe(1009);
  });

  it(`closes sockets that never say hello (silent past the heartbeat, or past ${HELLO_TIMEOUT_MS / 1000} s), and bounds them per address`, async () => {
    const silent = await Promise.all([1, 2, 3].map(() => rawSocket(stack.url)));
    // A fourth from the same address is refused at the upgrade while three have not said hello.
    expect(await upgradeOutcome(stack.url)).toBe('HTTP 429');
    for (const close of await Promise.all(silent.map((s) => s.closed))) expect(close.code).toBe(1000);
    // Once they are closed, the address may connect again; a miner that has said hello no longer counts against it.
    const honest = await ScriptedMiner.connect(stack.url, 1, 'websocket');
    await honest.hello();
    const others = await Promise.all([1, 2, 3].map(() => rawSocket(stack.url)));
    expect(await upgradeOutcome(stack.url)).toBe('HTTP 429');
    others.forEach((s) => s.ws.terminate());
    honest.close();
  }, 60_000);

  it('closes a session that floods garbage, as on the data channel', async () => {
    const flooder = await ScriptedMiner.connect(stack.url, 1, 'websocket');
    const closed = new Promise<string>((resolve) => flooder.link.onClose(resolve));
    for (let i = 0; i < 250; i++) flooder.sendBytes(new Uint8Array([0xc1, i & 0xff]));
    expect(await closed).toMatch(/^the WebSocket closed \(1000/);
    expect((await flooder.next('error')).code).toBe('malformed-message');
  });

  it("is refused by a miner when someone else's host relays the coordinator's genuine challenge", async () => {
    // A relay at another address: it opens its own socket to the coordinator and passes the challenge on, frame for
    // frame. The challenge is the coordinator's, under its key, but signed over the host the relay dialled.
    const app = express();
    const config = await (await fetch(new URL('api/config', stack.url))).json();
    app.get('/api/config', (_req, res) => res.json(config));
    const server = createServer(app);
    const relay = new WebSocketServer({ server, path: MINER_SOCKET_PATH });
    relay.on('connection', (victim) => {
      const upstream = new WebSocket(new URL(MINER_SOCKET_PATH, stack.url.replace('http', 'ws')));
      upstream.on('message', (data: Buffer) => victim.send(data));
      victim.on('message', (data: Buffer) => upstream.send(data));
      victim.on('close', () => upstream.close());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const relayUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
    try {
      const outcome = await CoordinatorLink.open(relayUrl, await loadPeerJs(), { transport: 'websocket', WebSocket: WebSocket as unknown as WebSocketClass }).then(
        (link) => {
          link.close();
          return 'accepted';
        },
        (err: unknown) => (err as Error).message,
      );
      expect(outcome).toBe(`refused a challenge whose signature is not the coordinator's over the host of this socket (${new URL(relayUrl).host}): the channel ends at someone else`);
    } finally {
      for (const client of relay.clients) client.terminate();
      relay.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
