// The coordinator's challenge proves the data channel ends at it: whoever else answers on its peer id (a squatter on a
// PeerServer that reserves nothing, or a relay between miner and coordinator) is refused by the miner, even when it
// copies the coordinator's key or forwards the coordinator's own signed challenge.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import { ExpressPeerServer } from 'peer';
import type { DataConnection } from 'peerjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPeerJs, PEER_PATH } from '../../src/coordinator/peers.ts';
import { CoordinatorLink } from '../../src/miner/coordinator-link.ts';
import { FramedChannel } from '../../src/protocol/channel.ts';
import { encodeMessage } from '../../src/protocol/codec.ts';
import { sdpFingerprint } from '../../src/protocol/dtls-fingerprint.ts';
import type { ChallengeMessage } from '../../src/protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, signChallenge, toHex } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchSignallingConfig, type SignallingConfig } from '../helpers/signalling-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

/** A challenge's fields; `v` only to play a coordinator of another protocol version. */
type Challenge = Omit<ChallengeMessage, 'type' | 'v'> & { v?: number };
/** What the fake coordinator opens a data channel with, given the fingerprint of its own end of it. */
type Answer = (ownFingerprint: Uint8Array) => Promise<Challenge>;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let stack: TestStack;
let real: SignallingConfig;
beforeAll(async () => {
  stack = await startStack();
  real = await fetchSignallingConfig(stack.url);
});
afterAll(async () => {
  await stack?.stop();
});

/**
 * An origin that is not the coordinator's: its config names `coordinatorKey` and the real coordinator's peer id, and
 * its PeerServer reserves nothing, so its own peer holds that id and opens every data channel with `answer`.
 */
async function fakeCoordinator(coordinatorKey: string, answer: Answer): Promise<string> {
  const app = express();
  app.get('/api/config', (_req, res) => {
    res.json({ protocolVersion: PROTOCOL_VERSION, coordinatorPeerId: real.coordinatorPeerId, coordinatorKey, peer: { path: PEER_PATH, key: 'ergon' } });
  });
  const server = createServer(app);
  app.use(PEER_PATH, ExpressPeerServer(server, { path: '/', key: 'ergon' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const Peer = await loadPeerJs();
  const peer = new Peer(real.coordinatorPeerId, { host: '127.0.0.1', port, path: PEER_PATH, key: 'ergon', secure: false, config: { iceServers: [] }, debug: 0 });
  cleanups.push(() => peer.destroy());
  await new Promise((resolve, reject) => {
    peer.once('open', resolve);
    peer.once('error', reject);
  });
  peer.on('connection', (conn: DataConnection) => {
    conn.on('open', () => {
      const own = sdpFingerprint(conn.peerConnection.localDescription?.sdp ?? '');
      if (!own.ok) throw new Error(`the fake coordinator's own SDP ${own.problem}`);
      const channel = new FramedChannel({ send: (frame) => void conn.send(frame), bufferedBytes: () => 0 }, () => {}, () => {});
      void answer(own.value).then((challenge) => channel.send(encodeMessage({ type: 'challenge', v: PROTOCOL_VERSION, ...challenge })));
    });
  });
  return `http://127.0.0.1:${port}/`;
}

/** CoordinatorLink.open's outcome: the link, or the error it was refused with. */
async function open(url: string): Promise<CoordinatorLink | Error> {
  const Peer = await loadPeerJs();
  // Tried again only on PeerJS's early-candidate 'webrtc' set-up error, as ScriptedMiner.connect does.
  for (let attempt = 1; ; attempt++) {
    const outcome = await CoordinatorLink.open(url, Peer).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (!(outcome instanceof Error) || !outcome.message.startsWith('webrtc') || attempt >= 5) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

async function refusal(url: string): Promise<string> {
  const outcome = await open(url);
  if (outcome instanceof Error) return outcome.message;
  outcome.close();
  return 'accepted';
}

const challengeOf = (coordinatorKey: Uint8Array): Challenge => ({ coordinatorKey, nonce: new Uint8Array(randomBytes(32)), heartbeatMs: 2_000 });
const NOT_THIS_CHANNEL = /^refused a challenge whose signature is not the coordinator's over this data channel's certificate \(sha-256 [0-9A-F:]+…\): the channel ends at someone else$/;

describe("the coordinator's challenge", () => {
  it('is signed by the coordinator over its own end of the channel, and the miner takes it', async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    cleanups.push(() => miner.close());
    expect(toHex(miner.challenge.coordinatorKey)).toBe(real.coordinatorKey);
    expect(miner.challenge.signature).toHaveLength(64);
    await miner.hello();
  });

  it('is refused unsigned, even under the key the origin serves', async () => {
    const realKey = Uint8Array.from(Buffer.from(real.coordinatorKey, 'hex'));
    const url = await fakeCoordinator(real.coordinatorKey, async () => challengeOf(realKey));
    expect(await refusal(url)).toBe("refused an unsigned challenge: the coordinator signs its challenge over its data channel's certificate");
  });

  it('is refused from a coordinator of the previous protocol, which does not sign it, with both versions named', async () => {
    const realKey = Uint8Array.from(Buffer.from(real.coordinatorKey, 'hex'));
    const url = await fakeCoordinator(real.coordinatorKey, async () => ({ ...challengeOf(realKey), v: PROTOCOL_VERSION - 1 }));
    expect(await refusal(url)).toBe(
      `the coordinator did not open with a challenge (unsupported-version: protocol version ${PROTOCOL_VERSION - 1} is not supported; this side speaks ${PROTOCOL_VERSION})`,
    );
  });

  it("is refused when it copies the coordinator's key but is signed by another", async () => {
    const realKey = Uint8Array.from(Buffer.from(real.coordinatorKey, 'hex'));
    const squatter = await generateSigningKeys();
    const url = await fakeCoordinator(real.coordinatorKey, async (own) => {
      const challenge = challengeOf(realKey);
      return { ...challenge, signature: await signChallenge(squatter.privateKey, challenge, own) };
    });
    expect(await refusal(url)).toMatch(NOT_THIS_CHANNEL);
  });

  it("is refused when a relay forwards the coordinator's own signed challenge over a channel it ends itself", async () => {
    const url = await fakeCoordinator(real.coordinatorKey, async () => {
      // The relay is a miner of the real coordinator, and passes on the challenge it was sent, signature and all.
      const relay = await ScriptedMiner.connect(stack.url);
      cleanups.push(() => relay.close());
      const { coordinatorKey, nonce, heartbeatMs, signature } = relay.challenge;
      return { coordinatorKey, nonce, heartbeatMs, signature };
    });
    expect(await refusal(url)).toMatch(NOT_THIS_CHANNEL);
  });

  it('is taken only when the key signs the certificate at the far end of this very channel, not another', async () => {
    // Here the test holds the pinned key, as only the coordinator should: what differs between the two is the fingerprint.
    const keys = await generateSigningKeys();
    const key = await exportPublicKey(keys.publicKey);
    const signedOver = (fingerprint: (own: Uint8Array) => Uint8Array): Answer => async (own) => {
      const challenge = challengeOf(key);
      return { ...challenge, signature: await signChallenge(keys.privateKey, challenge, fingerprint(own)) };
    };
    const other = await fakeCoordinator(toHex(key), signedOver((own) => own.map((b) => b ^ 1)));
    expect(await refusal(other)).toMatch(NOT_THIS_CHANNEL);
    const own = await fakeCoordinator(toHex(key), signedOver((fingerprint) => fingerprint));
    expect(await refusal(own)).toBe('accepted');
  });
});
