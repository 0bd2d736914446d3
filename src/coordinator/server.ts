// Composes one coordinator: HTTP (API and the PWA), PeerServer, the coordinator peer, scheduler and ledger.
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import type { FramedChannel } from '../protocol/channel.ts';
import { HEARTBEAT_MS } from '../protocol/heartbeat.ts';
import { toHex } from '../protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';
import { ApiKeys } from './api-keys.ts';
import { servedHosts, servedHostsOnly } from './hosts.ts';
import { mountApi } from './http.ts';
import { Jobs } from './jobs.ts';
import { cryptoRandomBytes, type RandomBytes } from '../work/kind.ts';
import { defaultKinds, kindRegistry, modelKinds, type KindRegistry } from '../work/registry.ts';
import { ONNX_RUNTIME } from '../work/onnx/model.ts';
import { ModelStore } from './model-store.ts';
import { mountModelsApi } from './models-api.ts';
import { mountOcrApi } from './ocr-api.ts';
import { OcrService, shippedOcrModels } from './ocr-service.ts';
import type { RateLimit } from './rate-limit.ts';
import type { Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import { auditStalledSoon, type MinerNotice } from './audits.ts';
import type { SettlementContext } from './settle.ts';
import type { MinerSession } from './miner-session.ts';
import { acceptMiner, type MinerConnections } from './miner-connections.ts';
import { LeaseGrace } from './lease-grace.ts';
import { MINER_SOCKET_PATH, mountMinerSocket } from './miner-socket.ts';
import { OperandBlobs } from './operand-blobs.ts';
import { mountOperandsApi } from './operands-api.ts';
import { CoordinatorMetrics } from './metrics.ts';
import { minersConnected, mountOperator, OperatorView, queueDepth } from './operator.ts';
import { newOperatorKey, OperatorKey } from './operator-key.ts';
import { mountPeerServer, PEER_PATH, startCoordinatorPeer, type PeerEndpoint } from './peers.ts';
import type { leaseSize } from './lease-sizing.ts';
import type { WorkQueue } from './queue.ts';
import type { RequesterQuota } from './quotas.ts';
import { DEFAULT_HANDSHAKE_LIMITS, Handshakes, type HandshakeLimits } from './signalling.ts';
import { loadOrCreateSigningKey } from './signing-key.ts';
import { LeaseIds } from './lease-ids.ts';
import { fleetKeyDir, openStorage } from './storage.ts';
import { mountFleetApi } from './fleet-api.ts';
import { Uploads, type UploadLimits } from './upload.ts';

/** Connections at once; beyond it a new one is closed at once. Each costs a WebRTC peer connection and a session. */
export const MAX_SESSIONS = 1_000;

/** The fleet's members are looked up every this many heartbeats (2 s): a new coordinator's pages are served soon. */
const FLEET_ORIGINS_EVERY_TICKS = 4;
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
  /** Names, besides localhost and addresses, that requests may give as their Host (behind a proxy, on a LAN). */
  publicHosts?: readonly string[];
  /** Overrides how leases are sized from a miner's record and measured speed (lease-sizing.ts leaseSize). */
  leaseSize?: typeof leaseSize;
  /** Overrides of the rate limits, for benchmarks that play many requesters or very fast miners. */
  rateLimits?: { minerMessages?: RateLimit; apiRequests?: RateLimit };
  /** Overrides of what each requester's key may hold at once. */
  quotas?: Partial<RequesterQuota>;
  /** Overrides of the bounds on uploads in progress. */
  uploadLimits?: Partial<UploadLimits>;
  /** Overrides of the bounds on WebRTC connections being set up (signalling.ts). */
  handshakeLimits?: Partial<HandshakeLimits>;
  /** How long a dropped miner's leases wait for its wallet key to come back with results (default LEASE_GRACE_MS). */
  leaseGraceMs?: number;
  /** Connections at once (default MAX_SESSIONS). */
  maxSessions?: number;
  /** The kinds of work served; by default every built-in kind (src/work/registry.ts). */
  kinds?: KindRegistry;
  /** The largest model POST /api/models accepts (default 64 MiB). */
  maxModelBytes?: number;
  /** Runtimes handed to the kinds' verifiers by name (e.g. onnxruntime-node for kinds that re-run work). */
  runtimes?: Readonly<Record<string, unknown>>;
  /** The random source of verifiers and of audit draws: crypto's by default; tests inject one they steer. */
  random?: RandomBytes;
  /** Opens /metrics and the operator page (src/coordinator/operator-key.ts); left out, they stay shut to everyone. */
  operatorKey?: string;
  /** The fleet's PostgreSQL (DATABASE_URL); unset: the embedded SQLite ledger in dataDir. */
  databaseUrl?: string;
  /** A folder every coordinator of the fleet reaches, for job operands (ERGON_SHARED_DIR); needed with databaseUrl. */
  sharedDir?: string;
  /** Test hooks where a crash loses the most (settle.ts); never set in production. */
  crashPoints?: SettlementContext['crashPoints'];
}

export interface RunningCoordinator {
  url: string;
  port: number;
  queue: WorkQueue;
  jobs: Jobs;
  ledger: Ledger;
  uploads: Uploads;
  sessions: ReadonlyMap<string, MinerSession>;
  metrics: CoordinatorMetrics;
  /** The operand blocks served to miners by hash, and the bytes sent to each session. */
  operandBlobs: OperandBlobs;
  close(): Promise<void>;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const signingKey = await loadOrCreateSigningKey(options.dataDir);
  const apiKeys = new ApiKeys(options.apiKeys);
  const models = await ModelStore.open(options.dataDir, options.maxModelBytes);
  const given = options.kinds ?? defaultKinds();
  const kinds = kindRegistry([...given.values(), ...modelKinds(models).filter((kind) => !given.has(kind.name))]);
  const leaseIds = await LeaseIds.of(signingKey);
  const { ledger, queue, operands: operandStore, fleet } = await openStorage({ dataDir: options.dataDir, databaseUrl: options.databaseUrl, sharedDir: options.sharedDir, kinds, leaseIds });
  const jobs = new Jobs(queue, kinds, ledger, operandStore);
  const kindNames = [...jobs.kinds.keys()];
  const uploads = new Uploads(operandStore, options.uploadLimits);
  const verify = { random: options.random ?? cryptoRandomBytes, runtimes: { [ONNX_RUNTIME]: models.runner, ...options.runtimes } };
  // A fleet's queue is the database: nothing to restore, and the shared operand folder is not this coordinator's to sweep.
  if (!fleet) await jobs.restore(Date.now());
  const ocr = await OcrService.open(options.dataDir, jobs, await shippedOcrModels(models), options.quotas);
  const sessions = new Map<string, MinerSession>();
  const metrics = new CoordinatorMetrics(kindNames, {
    minersConnected: () => minersConnected(sessions),
    connections: () => sessions.size,
    queueDepth: () => queueDepth(queue),
  });
  const operatorKey = new OperatorKey(options.operatorKey ?? newOperatorKey());
  const operatorView = new OperatorView({ key: operatorKey, metrics, ledger, queue, kinds: kindNames, sessions });
  const grace = new LeaseGrace(queue, options.leaseGraceMs);
  // A key's sessions include those dropped a moment ago whose leases are held for it (lease-grace.ts).
  const sessionsOf = (minerKey: string) => [...[...sessions.values()].filter((s) => s.minerKey === minerKey).map((s) => s.id), ...grace.of(minerKey)];
  /**
   * An audit's verdict for a miner that did not wait for it goes to every live session of its key (one may be a
   * closing tab's; the wallet keeps a receipt once, by unit); it is in the ledger either way.
   */
  const tell = (minerKey: string, notice: MinerNotice) => {
    for (const session of sessions.values()) if (session.minerKey === minerKey) session.tell(notice);
  };
  const settlement: SettlementContext = { jobs, queue, ledger, signingKey, verify, metrics, tell, crashPoints: options.crashPoints };
  const channels = new Map<string, FramedChannel>();
  const peerKey = options.peerKey ?? 'ergon';
  const peerId = `ergon-coordinator-${toHex(signingKey.publicKey).slice(0, 16)}`;

  const app = express();
  app.disable('x-powered-by');
  app.use(metrics.httpMiddleware());
  app.use(servedHostsOnly(servedHosts(options.host, options.publicHosts ?? [])));
  const httpServer = createServer(app);
  // A request that trickles its body in slowly holds a share of the uploads in flight: it gets this long in all, then
  // the socket is closed (a stalled one is closed sooner, by the upload's idle timeout).
  httpServer.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
  const peerServer = mountPeerServer(app, httpServer, peerKey, peerId);
  const operandBlobs = new OperandBlobs(queue);
  const miners: MinerConnections = {
    sessions,
    channels,
    grace,
    context: { ...settlement, rateLimit: options.rateLimits?.minerMessages, sessionsOf, operandBlobs, leaseSize: options.leaseSize },
    maxSessions: options.maxSessions ?? MAX_SESSIONS,
  };
  const minerSocket = mountMinerSocket(httpServer, {
    allowedOrigins: options.allowedOrigins ?? [],
    handshakeLimits: options.handshakeLimits,
    onConnection: (connection) => acceptMiner(connection, miners),
  });
  mountOperator(app, operatorView, { key: operatorKey, metrics });
  mountModelsApi(app, { models, apiKeys });
  // A fleet's key lives in the shared folder beside its operands: every coordinator of the fleet signs the same list.
  /** Origins of the fleet's live coordinators, refreshed every few heartbeats: their pages may read FLEET_READS here. */
  let fleetOrigins: ReadonlySet<string> = new Set();
  const isFleetOrigin = (origin: string) => fleetOrigins.has(origin);
  const refreshFleetOrigins = async () => {
    if (!fleet) return;
    fleetOrigins = new Set((await fleet.liveMembers(Date.now())).map((member) => new URL(member.url).origin));
  };
  mountOperandsApi(app, operandBlobs, { allowedOrigins: options.allowedOrigins, isFleetOrigin });
  if (fleet && options.sharedDir) mountFleetApi(app, fleet, await loadOrCreateSigningKey(await fleetKeyDir(options.sharedDir)), isFleetOrigin);
  mountApi(app, {
    jobs,
    ledger,
    apiKeys,
    allowedOrigins: options.allowedOrigins,
    isFleetOrigin,
    rateLimit: options.rateLimits?.apiRequests,
    quota: options.quotas,
    uploads,
    minersConnected: () => sessions.size,
    services: (api, authorize) => mountOcrApi(api, ocr, uploads, apiKeys, authorize),
    config: () => ({
      protocolVersion: PROTOCOL_VERSION,
      coordinatorPeerId: peerId,
      coordinatorKey: toHex(signingKey.publicKey),
      peer: { path: PEER_PATH, key: peerKey },
      minerSocket: { path: MINER_SOCKET_PATH },
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
    peerServer.token,
    (connection) => acceptMiner(connection, miners),
    (reason) => log('peer-warning', { reason }),
    peerServer.addressOf,
    new Handshakes({ ...DEFAULT_HANDSHAKE_LIMITS, ...options.handshakeLimits }),
  );

  let ticks = 0;
  const heartbeat = setInterval(() => {
    const nowMs = Date.now();
    if (fleet && ++ticks % FLEET_ORIGINS_EVERY_TICKS === 0) {
      refreshFleetOrigins().catch((err: unknown) => log('storage-error', { event: 'fleet-origins', error: String(err) }));
    }
    queue.expire(nowMs).then(
      (expired) => expired.forEach((lease) => log('lease-expired', { unit: lease.unit.id, session: lease.sessionId })),
      (err: unknown) => log('queue-error', { event: 'expire', error: String(err) }),
    );
    jobs.evictFinished(nowMs).catch((err: unknown) => log('storage-error', { event: 'evict', error: String(err) }));
    for (const session of sessions.values()) session.tick(nowMs);
    for (const channel of channels.values()) channel.checkStalled();
  }, HEARTBEAT_MS);

  const url = `http://${options.host}:${port}/`;
  if (fleet) {
    fleet.member = { ...fleet.member, signingKey: toHex(signingKey.publicKey), url, peerId };
    await fleet.beat(Date.now());
    await refreshFleetOrigins();
  }
  log('coordinator-started', { url, peerId, dataDir: options.dataDir, fleet: fleet?.member.instance });
  // A crash between holding a job's last result and its audit leaves the job with only held units: audit them now.
  if (!fleet) for (const id of await queue.jobIds()) auditStalledSoon(settlement, id);
  return {
    url,
    port,
    queue,
    jobs,
    ledger,
    uploads,
    sessions,
    metrics,
    operandBlobs,
    async close() {
      clearInterval(heartbeat);
      ocr.close();
      grace.close();
      operatorView.close();
      peer.close();
      peerServer.close();
      minerSocket.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await fleet?.leave().catch((err: unknown) => log('storage-error', { event: 'leave-fleet', error: String(err) }));
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
