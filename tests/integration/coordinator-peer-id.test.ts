// The coordinator's peer id belongs to the coordinator: nobody else can register it at its PeerServer, even while
// the coordinator restarts, and a miner that reaches someone else under that id refuses its challenge.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { ExpressPeerServer } from 'peer';
import type { DataConnection, Peer as PeerType } from 'peerjs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPeerJs, mountPeerServer, PEER_PATH, startCoordinatorPeer, type IncomingConnection } from '../../src/coordinator/peers.ts';
import { CoordinatorLink } from '../../src/miner/coordinator-link.ts';
import { FramedChannel } from '../../src/protocol/channel.ts';
import { encodeMessage } from '../../src/protocol/codec.ts';
import { exportPublicKey, generateSigningKeys, toHex } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { freePort } from '../helpers/coordinator-process.ts';
import { startLoggedCoordinator, type LoggedCoordinator } from '../helpers/logged-coordinator.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchSignallingConfig, SignallingClient, type SignallingConfig } from '../helpers/signalling-client.ts';

/** Registrations the squatter must still see refused once the coordinator is back, before the test judges it. */
const ATTEMPTS_WHILE_UP = 20;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Serves `app` on a free port, with `mount` given the HTTP server first (a PeerServer needs it). */
async function serve(app: express.Express, mount: (server: Server) => void): Promise<{ url: string; port: number }> {
  const server = createServer(app);
  mount(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, port };
}

/** Registers `peerId` at the PeerServer over and over, as fast as refusals come back, until stopped. */
function squat(url: string, config: SignallingConfig) {
  let stopped = false;
  const state = { attempts: 0, wins: 0, reasons: new Set<string>() };
  const loop = (async () => {
    while (!stopped) {
      state.attempts++;
      const registration = await SignallingClient.register(url, config, config.coordinatorPeerId, 'squatter-token');
      if (registration.outcome === 'open') {
        state.wins++;
        // Holds the id as a squatter would, until the test ends.
        cleanups.push(() => registration.client.close());
        return;
      }
      state.reasons.add(registration.reason);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    state,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

describe("the coordinator's peer id", () => {
  it('is refused to anyone without the coordinator\'s secret at the PeerServer, even when they come first', async () => {
    const app = express();
    const peerId = 'ergon-coordinator-0123456789abcdef';
    let token = '';
    const { url, port } = await serve(app, (server) => {
      token = mountPeerServer(app, server, 'ergon', peerId).token;
    });
    const config: SignallingConfig = { coordinatorPeerId: peerId, coordinatorKey: '', peer: { path: PEER_PATH, key: 'ergon' } };

    // Before the coordinator's peer: a guessed token, and the PeerServer's own ways of reading the query.
    const tries = [
      ['a guessed token', undefined],
      ['the id twice, the reserved one last', `key=ergon&id=someone-else&token=t&id=${peerId}`],
      ['the id percent-encoded', `key=ergon&id=${peerId.replace('coordinator', '%63oordinator')}&token=t`],
    ] as const;
    for (const [what, query] of tries) {
      const registration = await SignallingClient.register(url, config, peerId, 'guess', query);
      expect(registration.outcome, what).toBe('refused');
    }

    // The coordinator's peer then registers it, and a miner dialling the id reaches it.
    const connected = new Promise<IncomingConnection>((resolve) => {
      void startCoordinatorPeer(port, peerId, 'ergon', token, resolve, () => {}).then((endpoint) => cleanups.push(() => endpoint.close()));
    });
    const Peer = await loadPeerJs();
    const miner = new Peer({ host: '127.0.0.1', port, path: PEER_PATH, key: 'ergon', secure: false, config: { iceServers: [] }, debug: 0 });
    cleanups.push(() => miner.destroy());
    await new Promise((resolve) => miner.once('open', resolve));
    // PeerJS in Node now and then applies one of the coordinator's candidates before its answer and the set-up
    // fails with a 'webrtc' error (see ScriptedMiner.connect): dial again then, as a miner would.
    let dials = 0;
    const dial = () => {
      dials++;
      miner.connect(peerId, { serialization: 'raw', reliable: true });
    };
    miner.on('error', (err) => {
      if (err.type === 'webrtc' && dials < 5) setTimeout(dial, 100 * dials);
    });
    dial();
    expect((await connected).id).toMatch(/^dc_/);
    // And the id stays refused to others while the coordinator holds it.
    expect((await SignallingClient.register(url, config, peerId, 'guess')).outcome).toBe('refused');
  });

  it('stays with the coordinator through a restart while a squatter keeps registering it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-peer-id-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const first = await startLoggedCoordinator(dataDir, port);
    const config = await fetchSignallingConfig(first.url);
    await first.stop();

    // The squatter starts while the coordinator is down and keeps at it while it comes back.
    const squatter = squat(`http://127.0.0.1:${port}/`, config);
    let second: LoggedCoordinator | undefined;
    try {
      second = await startLoggedCoordinator(dataDir, port);
      const upAt = squatter.state.attempts;
      while (squatter.state.attempts < upAt + ATTEMPTS_WHILE_UP && squatter.state.wins === 0) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await squatter.stop();
    }
    const coordinator = second;
    cleanups.push(() => coordinator.stop());
    expect(squatter.state.wins).toBe(0);
    expect(squatter.state.attempts).toBeGreaterThan(ATTEMPTS_WHILE_UP);
    expect(coordinator.events.some((e) => e.event === 'peer-id-refused' && e.peer === config.coordinatorPeerId)).toBe(true);

    // Miners that dial the id reach the coordinator itself: its challenge names the key its origin serves.
    const miner = await ScriptedMiner.connect(coordinator.url);
    cleanups.push(() => miner.close());
    expect(toHex(miner.challenge.coordinatorKey)).toBe(config.coordinatorKey);
    await miner.hello();
  });

  it("is not trusted by a miner on its own: a challenge under another key than the origin's is refused", async () => {
    // A PeerServer that reserves nothing (another deployment's, or one the squatter runs), where a squatter holds the
    // id that the coordinator's origin names, with a key of its own.
    const app = express();
    const peerId = 'ergon-coordinator-fedcba9876543210';
    const coordinatorKey = toHex(await exportPublicKey((await generateSigningKeys()).publicKey));
    app.get('/api/config', (_req, res) => {
      res.json({ protocolVersion: PROTOCOL_VERSION, coordinatorPeerId: peerId, coordinatorKey, peer: { path: PEER_PATH, key: 'ergon' } });
    });
    const { url, port } = await serve(app, (server) => app.use(PEER_PATH, ExpressPeerServer(server, { path: '/', key: 'ergon' })));

    const squatterKey = await exportPublicKey((await generateSigningKeys()).publicKey);
    const Peer = await loadPeerJs();
    const squatter = await openPeer(Peer, peerId, port);
    cleanups.push(() => squatter.destroy());
    squatter.on('connection', (conn: DataConnection) => {
      conn.on('open', () => {
        const channel = new FramedChannel({ send: (frame) => void conn.send(frame), bufferedBytes: () => 0 }, () => {}, () => {});
        void channel.send(encodeMessage({ type: 'challenge', v: PROTOCOL_VERSION, coordinatorKey: squatterKey, nonce: new Uint8Array(randomBytes(32)), heartbeatMs: 2_000 }));
      });
    });

    // Tried again only on PeerJS's early-candidate 'webrtc' set-up error, as ScriptedMiner.connect does.
    let refusal: Error | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      refusal = await CoordinatorLink.open(url, Peer).then(
        (link) => {
          link.close();
          return undefined;
        },
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
      if (!refusal?.message.startsWith('webrtc')) break;
    }
    expect(refusal?.message).toMatch(/refused a challenge under key .*: the coordinator's origin serves key/);
  });
});

function openPeer(Peer: typeof PeerType, id: string, port: number): Promise<PeerType> {
  const peer = new Peer(id, { host: '127.0.0.1', port, path: PEER_PATH, key: 'ergon', secure: false, config: { iceServers: [] }, debug: 0 });
  return new Promise((resolve, reject) => {
    peer.once('open', () => resolve(peer));
    peer.once('error', reject);
  });
}
