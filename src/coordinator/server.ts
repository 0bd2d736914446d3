// Composes one coordinator: HTTP (API and the PWA), PeerServer, the coordinator peer, scheduler and ledger.
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import express from 'express';
import { FramedChannel } from '../protocol/channel.ts';
import { toHex } from '../protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';
import { ApiKeys } from './api-keys.ts';
import { mountApi } from './http.ts';
import { Jobs } from './jobs.ts';
import { OperandStore } from './operand-store.ts';
import type { RateLimit } from './rate-limit.ts';
import { SqliteLedger } from './ledger/sqlite.ts';
import type { Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import { HEARTBEAT_MS, MinerSession } from './miner-session.ts';
import { mountPeerServer, PEER_PATH, startCoordinatorPeer, type PeerEndpoint } from './peers.ts';
import { Scheduler } from './scheduler.ts';
import { loadOrCreateSigningKey } from './signing-key.ts';

/** Long enough to upload the largest job (512 MiB) at 5 MiB/s. */
const HTTP_REQUEST_TIMEOUT_MS = 120_000;

export interface CoordinatorOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
  dataDir: string;
  /** Built PWA to serve at /, when present */
  staticDir?: string;
  peerKey?: string;
  /** Requesters' API keys; at least one. */
  apiKeys: readonly string[];
  /** Origins besides the coordinator's own that browsers may call the API from. */
  allowedOrigins?: readonly string[];
  /** Overrides of the rate limits, for benchmarks that play many requesters or very fast miners. */
  rateLimits?: { minerMessages?: RateLimit; apiRequests?: RateLimit };
}

export interface RunningCoordinator {
  url: string;
  port: number;
  scheduler: Scheduler;
  jobs: Jobs;
  ledger: Ledger;
  sessions: ReadonlyMap<string, MinerSession>;
  close(): Promise<void>;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const signingKey = await loadOrCreateSigningKey(options.dataDir);
  const apiKeys = new ApiKeys(options.apiKeys);
  const ledger = new SqliteLedger(join(options.dataDir, 'ledger.sqlite'));
  const scheduler = new Scheduler();
  const jobs = new Jobs(scheduler, ledger, await OperandStore.open(options.dataDir));
  await jobs.restore(Date.now());
  const sessions = new Map<string, MinerSession>();
  const channels = new Map<string, FramedChannel>();
  const peerKey = options.peerKey ?? 'ergon';
  const peerId = `ergon-coordinator-${toHex(signingKey.publicKey).slice(0, 16)}`;

  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  // A request that trickles its body in slowly holds memory: it gets this long in all, then the socket is closed.
  httpServer.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
  const peerToken = mountPeerServer(app, httpServer, peerKey, peerId);
  mountApi(app, {
    jobs,
    ledger,
    apiKeys,
    allowedOrigins: options.allowedOrigins,
    rateLimit: options.rateLimits?.apiRequests,
    minersConnected: () => sessions.size,
    config: () => ({
      protocolVersion: PROTOCOL_VERSION,
      coordinatorPeerId: peerId,
      coordinatorKey: toHex(signingKey.publicKey),
      peer: { path: PEER_PATH, key: peerKey },
    }),
  });
  if (options.staticDir && existsSync(options.staticDir)) {
    app.use(express.static(options.staticDir, { index: 'index.html' }));
  }

  await listen(httpServer, options.port, options.host);
  const address = httpServer.address();
  if (!address || typeof address === 'string') throw new Error('coordinator: HTTP server has no port');
  const port = address.port;

  const peer: PeerEndpoint = await startCoordinatorPeer(
    port,
    peerId,
    peerKey,
    peerToken,
    (connection) => {
      const sessionId = randomUUID();
      const channel: FramedChannel = new FramedChannel(
        connection.pipe,
        (bytes) => {
          session.receive(bytes).catch((err: unknown) => {
            log('session-error', { session: sessionId, error: String(err) });
            session.frameError({ code: 'internal', message: 'the coordinator failed to handle that message' });
          });
        },
        (error) => session.frameError(error),
      );
      const session = new MinerSession(
        sessionId,
        { jobs, scheduler, ledger, signingKey, rateLimit: options.rateLimits?.minerMessages },
        (bytes) => void channel.send(bytes),
        (reason) => {
          log('session-closing', { session: sessionId, miner: session.minerKey, reason });
          connection.close();
          drop();
        },
      );
      const drop = () => {
        if (!sessions.delete(sessionId)) return;
        channels.delete(sessionId);
        channel.close();
        const released = scheduler.releaseSession(sessionId);
        log('miner-left', { session: sessionId, miner: session.minerKey, released: released.length });
      };
      sessions.set(sessionId, session);
      channels.set(sessionId, channel);
      connection.onData((data) => {
        session.heard();
        channel.receive(data);
      });
      connection.onClose(drop);
      log('miner-connected', { session: sessionId, connection: connection.id });
      session.start();
    },
    (reason) => log('peer-warning', { reason }),
  );

  const heartbeat = setInterval(() => {
    const nowMs = Date.now();
    for (const lease of scheduler.expire(nowMs)) log('lease-expired', { unit: lease.unit.id, session: lease.sessionId });
    jobs.evictFinished(nowMs).catch((err: unknown) => log('storage-error', { event: 'evict', error: String(err) }));
    for (const session of sessions.values()) session.tick(nowMs);
    for (const channel of channels.values()) channel.checkStalled();
  }, HEARTBEAT_MS);

  const url = `http://${options.host}:${port}/`;
  log('coordinator-started', { url, peerId, dataDir: options.dataDir });
  return {
    url,
    port,
    scheduler,
    jobs,
    ledger,
    sessions,
    async close() {
      clearInterval(heartbeat);
      peer.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await ledger.close();
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
