// One miner's connection: challenge and hello, leases, results verified before credit, receipts, heartbeat.
import { randomBytes } from 'node:crypto';
import { encodeMessage, parseMinerMessage } from '../protocol/codec.ts';
import type { ProtocolError } from '../protocol/errors.ts';
import type { CoordinatorMessageInput, MinerMessage } from '../protocol/messages.ts';
import { helloChallengeBytes, signReceipt, toHex, verifySignature } from '../protocol/receipt.ts';
import { f32Tensor, f32Values } from '../protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';
import { cryptoRandomBytes } from '../work/kind.ts';
import { gemmKind, unitOperands } from '../work/gemm/gemm.ts';
import type { Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import { microCreditsFor } from './pay.ts';
import type { Scheduler } from './scheduler.ts';
import type { SigningKey } from './signing-key.ts';

/** How often each side pings; a peer silent for HEARTBEAT_DEAD_AFTER_MS is dropped and its leases re-leased. */
export const HEARTBEAT_MS = 2_000;
export const HEARTBEAT_DEAD_AFTER_MS = 10_000;
/** A miner asking for work when there is none is told to ask again after this long. */
export const NO_WORK_RETRY_MS = 500;

type Outgoing = Extract<CoordinatorMessageInput, { type: string }>;
type Omit1<T> = T extends unknown ? Omit<T, 'v'> : never;

export interface SessionContext {
  scheduler: Scheduler;
  ledger: Ledger;
  signingKey: SigningKey;
}

export class MinerSession {
  readonly nonce = new Uint8Array(randomBytes(32));
  /** hex of the wallet key, once the miner proved it holds it */
  minerKey: string | null = null;
  private minerKeyBytes: Uint8Array | null = null;
  lastHeardAtMs = Date.now();
  unitsAccepted = 0;
  unitsRejected = 0;

  constructor(
    readonly id: string,
    private readonly ctx: SessionContext,
    private readonly sendBytes: (bytes: Uint8Array) => void,
    private readonly closeConnection: (reason: string) => void,
  ) {}

  start(): void {
    this.send({ type: 'challenge', coordinatorKey: this.ctx.signingKey.publicKey, nonce: this.nonce, heartbeatMs: HEARTBEAT_MS });
  }

  /** Any frame counts as a sign of life: a large result takes many frames to arrive. */
  heard(): void {
    this.lastHeardAtMs = Date.now();
  }

  /** Called every heartbeat: pings the miner, and closes the connection if it went silent. */
  tick(nowMs: number): void {
    if (nowMs - this.lastHeardAtMs > HEARTBEAT_DEAD_AFTER_MS) {
      this.closeConnection(`silent for ${nowMs - this.lastHeardAtMs} ms`);
      return;
    }
    this.send({ type: 'ping', nonce: nowMs });
  }

  frameError(error: ProtocolError): void {
    log('protocol-error', { session: this.id, miner: this.minerKey, code: error.code, message: error.message });
    this.send({ type: 'error', code: error.code, message: error.message });
  }

  async receive(bytes: Uint8Array): Promise<void> {
    const parsed = parseMinerMessage(bytes);
    if (!parsed.ok) return this.frameError(parsed.error);
    const message = parsed.value;
    switch (message.type) {
      case 'ping':
        return this.send({ type: 'pong', nonce: message.nonce });
      case 'pong':
      case 'error':
        return;
      case 'hello':
        return this.hello(message);
      case 'work-request':
        return this.workRequest();
      case 'result':
        return this.result(message);
    }
  }

  private async hello(message: Extract<MinerMessage, { type: 'hello' }>): Promise<void> {
    const proof = helloChallengeBytes(this.nonce, this.ctx.signingKey.publicKey);
    if (!(await verifySignature(message.minerKey, message.signature, proof))) {
      return this.sendError('bad-signature', 'the hello signature does not verify for this wallet key and challenge');
    }
    this.minerKeyBytes = message.minerKey;
    this.minerKey = toHex(message.minerKey);
    log('miner-hello', { session: this.id, miner: this.minerKey, vendor: message.adapter.vendor, architecture: message.adapter.architecture });
    this.send({ type: 'welcome' });
  }

  private workRequest(): void {
    if (!this.minerKey) return this.sendError('not-authenticated', 'say hello with a signed challenge before asking for work');
    const lease = this.ctx.scheduler.lease(this.id, Date.now());
    if (!lease) return this.send({ type: 'no-work', retryAfterMs: NO_WORK_RETRY_MS });
    const job = this.ctx.scheduler.job(lease.unit.jobId);
    if (!job) throw new Error(`lease ${lease.id} names unknown job ${lease.unit.jobId}`);
    const { a, b } = unitOperands(job.job, lease.unit);
    log('lease', { session: this.id, miner: this.minerKey, unit: lease.unit.id, lease: lease.id });
    this.send({
      type: 'lease',
      leaseId: lease.id,
      unitId: lease.unit.id,
      kind: 'gemm',
      deadlineMs: lease.deadlineAtMs - Date.now(),
      a: f32Tensor([lease.unit.rows, lease.unit.depth], a),
      b: f32Tensor([lease.unit.depth, lease.unit.cols], b),
    });
  }

  private async result(message: Extract<MinerMessage, { type: 'result' }>): Promise<void> {
    const { scheduler, ledger, signingKey } = this.ctx;
    const minerKeyBytes = this.minerKeyBytes;
    if (!this.minerKey || !minerKeyBytes) return this.sendError('not-authenticated', 'say hello before sending results');
    const lease = scheduler.leaseFor(message.leaseId, this.id);
    if (!lease || lease.unit.id !== message.unitId) {
      return this.reject(message.unitId, 'unknown-lease', `lease ${message.leaseId} for unit ${message.unitId} is not held by this miner`);
    }
    const { unit } = lease;
    const [rows, cols] = message.output.shape;
    if (message.output.shape.length !== 2 || rows !== unit.rows || cols !== unit.cols) {
      scheduler.release(lease);
      return this.reject(unit.id, 'shape-mismatch', `result is ${message.output.shape.join('x')}, unit expects ${unit.rows}x${unit.cols}`);
    }
    const job = scheduler.job(unit.jobId);
    if (!job) throw new Error(`lease ${lease.id} names unknown job ${unit.jobId}`);
    const tile = f32Values(message.output);
    const verdict = gemmKind.verify(job.job, unit, tile, cryptoRandomBytes);
    if (!verdict.ok) {
      scheduler.release(lease);
      return this.reject(unit.id, verdict.error.code, verdict.error.message);
    }

    const ops = gemmKind.ops(unit);
    const microCredits = microCreditsFor(ops);
    const nowMs = Date.now();
    const credited = await ledger.credit({
      unitId: unit.id, jobId: unit.jobId, minerKey: this.minerKey, ops, microCredits, gpuSeconds: message.gpuSeconds, createdAtMs: nowMs,
    });
    scheduler.complete(lease, Float32Array.from(tile), nowMs);
    if (!credited) return this.reject(unit.id, 'unknown-lease', `unit ${unit.id} was already credited`);
    this.unitsAccepted++;
    const receipt = await signReceipt(signingKey.privateKey, {
      unitId: unit.id, jobId: unit.jobId, kind: 'gemm', minerKey: minerKeyBytes, coordinatorKey: signingKey.publicKey,
      ops, microCredits, gpuSeconds: message.gpuSeconds, joules: 0, joulesSource: 'none', issuedAtMs: BigInt(nowMs),
    });
    log('credit', { session: this.id, miner: this.minerKey, unit: unit.id, job: unit.jobId, ops, microCredits, gpuSeconds: message.gpuSeconds });
    this.send({ type: 'receipt', receipt });
  }

  private reject(unitId: string, code: string, message: string): void {
    this.unitsRejected++;
    log('result-rejected', { session: this.id, miner: this.minerKey, unit: unitId, code, message });
    this.send({ type: 'rejected', unitId, code, message });
  }

  private sendError(code: ProtocolError['code'], message: string): void {
    this.frameError({ code, message });
  }

  private send(message: Omit1<Outgoing>): void {
    this.sendBytes(encodeMessage({ ...message, v: PROTOCOL_VERSION }));
  }
}
