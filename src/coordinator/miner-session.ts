// One miner's connection: challenge and hello, leases, results verified before credit, receipts, heartbeat.
import { randomBytes } from 'node:crypto';
import { encodeMessage, parseMinerMessage } from '../protocol/codec.ts';
import type { ProtocolError } from '../protocol/errors.ts';
import type { CoordinatorMessageInput, MinerMessage, Precision } from '../protocol/messages.ts';
import { helloChallengeBytes, signReceipt, toHex, verifySignature } from '../protocol/receipt.ts';
import { f16Tensor, f32Tensor, f32Values, type Tensor } from '../protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';
import { cryptoRandomBytes } from '../work/kind.ts';
import { gemmKind, unitHalves, unitOperands, type GemmJob, type GemmUnit } from '../work/gemm/gemm.ts';
import { checkGpuSeconds } from './claims.ts';
import type { Jobs } from './jobs.ts';
import type { Ledger, Reputation } from './ledger/ledger.ts';
import { LedgerError } from './ledger/sqlite.ts';
import { log } from './log.ts';
import { microCreditsFor } from './pay.ts';
import { MINER_MESSAGES, TokenBucket, type RateLimit } from './rate-limit.ts';
import { isBanned, nextReputation, type Outcome } from './reputation.ts';
import type { Scheduler } from './scheduler.ts';
import type { SigningKey } from './signing-key.ts';

/** How often each side pings; a peer silent for HEARTBEAT_DEAD_AFTER_MS is dropped and its leases re-leased. */
export const HEARTBEAT_MS = 2_000;
export const HEARTBEAT_DEAD_AFTER_MS = 10_000;
/** A miner asking for work when there is none is told to ask again after this long. */
export const NO_WORK_RETRY_MS = 500;
/** A session that sends this many messages that cannot be parsed is abusing the coordinator and is closed. */
export const MAX_PROTOCOL_ERRORS = 200;
/** A session that keeps sending this many messages over its rate limit is closed. */
export const MAX_RATE_LIMITED = 1_000;

type Outgoing = Extract<CoordinatorMessageInput, { type: string }>;
type Omit1<T> = T extends unknown ? Omit<T, 'v'> : never;

export interface SessionContext {
  jobs: Jobs;
  scheduler: Scheduler;
  ledger: Ledger;
  signingKey: SigningKey;
  rateLimit?: RateLimit;
}

export class MinerSession {
  readonly nonce = new Uint8Array(randomBytes(32));
  /** hex of the wallet key, once the miner proved it holds it */
  minerKey: string | null = null;
  private minerKeyBytes: Uint8Array | null = null;
  /** What the miner said it runs; until hello, f32 only. */
  private precisions: readonly Precision[] = ['f32'];
  lastHeardAtMs = Date.now();
  unitsAccepted = 0;
  unitsRejected = 0;
  private protocolErrors = 0;
  private rateLimited = 0;
  private rateLimitToldAtMs = 0;
  private closing = false;
  private readonly bucket: TokenBucket;
  /** lease id -> when its lease message was sent, for the wall-time bound on claimed GPU time */
  private readonly leaseSentAtMs = new Map<string, number>();

  constructor(
    readonly id: string,
    private readonly ctx: SessionContext,
    private readonly sendBytes: (bytes: Uint8Array) => void,
    private readonly closeConnection: (reason: string) => void,
  ) {
    this.bucket = new TokenBucket(ctx.rateLimit ?? MINER_MESSAGES, Date.now());
  }

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

  /** A message or frame that could not be read: an error reply; many of them close the session as abuse. */
  frameError(error: ProtocolError): void {
    log('protocol-error', { session: this.id, miner: this.minerKey, code: error.code, message: error.message });
    this.send({ type: 'error', code: error.code, message: error.message });
    if (++this.protocolErrors >= MAX_PROTOCOL_ERRORS) this.close(`${this.protocolErrors} malformed messages`);
  }

  async receive(bytes: Uint8Array): Promise<void> {
    if (this.closing) return;
    const nowMs = Date.now();
    if (!this.bucket.take(nowMs)) {
      if (++this.rateLimited >= MAX_RATE_LIMITED) return this.close(`${this.rateLimited} messages over the rate limit`);
      // Tell the miner once a second at most: answering every dropped message would itself be a flood.
      if (nowMs - this.rateLimitToldAtMs >= 1_000) {
        this.rateLimitToldAtMs = nowMs;
        this.send({ type: 'error', code: 'rate-limited', message: `too many messages; retry after ${this.bucket.retryAfterMs()} ms` });
      }
      return;
    }
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
    if (this.minerKey) return this.sendError('malformed-message', 'this session already said hello');
    const minerKey = toHex(message.minerKey);
    const reputation = await this.ctx.ledger.reputation(minerKey);
    if (isBanned(reputation, Date.now())) return this.refuseBanned(reputation);
    this.minerKeyBytes = message.minerKey;
    this.minerKey = minerKey;
    this.precisions = message.precisions;
    log('miner-hello', {
      session: this.id, miner: this.minerKey, score: reputation.score, backend: message.backend, precisions: message.precisions.join(','), vendor: message.adapter.vendor, architecture: message.adapter.architecture,
    });
    this.send({ type: 'welcome' });
  }

  private async workRequest(): Promise<void> {
    if (!this.minerKey) return this.sendError('not-authenticated', 'say hello with a signed challenge before asking for work');
    const reputation = await this.ctx.ledger.reputation(this.minerKey);
    if (isBanned(reputation, Date.now())) return this.refuseBanned(reputation);
    const lease = this.ctx.scheduler.lease(this.id, Date.now(), this.precisions);
    if (!lease) return this.send({ type: 'no-work', retryAfterMs: NO_WORK_RETRY_MS });
    const job = this.ctx.scheduler.job(lease.unit.jobId);
    if (!job) throw new Error(`lease ${lease.id} names unknown job ${lease.unit.jobId}`);
    const { unit } = lease;
    const { a, b } = leaseOperands(job.job, unit);
    log('lease', { session: this.id, miner: this.minerKey, unit: unit.id, lease: lease.id, precision: job.job.precision });
    this.leaseSentAtMs.set(lease.id, Date.now());
    this.send({
      type: 'lease',
      leaseId: lease.id,
      unitId: lease.unit.id,
      kind: 'gemm',
      deadlineMs: lease.deadlineAtMs - Date.now(),
      a,
      b,
    });
  }

  private async result(message: Extract<MinerMessage, { type: 'result' }>): Promise<void> {
    const { scheduler, signingKey } = this.ctx;
    const minerKeyBytes = this.minerKeyBytes;
    if (!this.minerKey || !minerKeyBytes) return this.sendError('not-authenticated', 'say hello before sending results');
    const lease = scheduler.leaseFor(message.leaseId, this.id);
    if (!lease || lease.unit.id !== message.unitId) return this.resultForNoLease(message);
    const { unit } = lease;
    const sentAtMs = this.leaseSentAtMs.get(lease.id) ?? lease.leasedAtMs;
    this.leaseSentAtMs.delete(lease.id);
    const [rows, cols] = message.output.shape;
    if (message.output.shape.length !== 2 || rows !== unit.rows || cols !== unit.cols || message.output.dtype !== 'f32') {
      scheduler.release(lease);
      return this.reject(unit.id, 'shape-mismatch', `result is ${message.output.dtype} ${message.output.shape.join('x')}, unit expects f32 ${unit.rows}x${unit.cols}`);
    }
    const ops = gemmKind.ops(unit);
    const claim = checkGpuSeconds(message.gpuSeconds, ops, (Date.now() - sentAtMs) / 1000);
    if (claim) {
      scheduler.release(lease);
      return this.reject(unit.id, claim.code, claim.message);
    }
    const job = scheduler.job(unit.jobId);
    if (!job) throw new Error(`lease ${lease.id} names unknown job ${unit.jobId}`);
    const tile = f32Values(message.output);
    const verdict = gemmKind.verify(job.job, unit, tile, cryptoRandomBytes);
    if (!verdict.ok) {
      scheduler.release(lease);
      return this.reject(unit.id, verdict.error.code, verdict.error.message);
    }

    const { precision } = job.job;
    const microCredits = microCreditsFor(ops, precision);
    const nowMs = Date.now();
    const entry = {
      unitId: unit.id, jobId: unit.jobId, minerKey: this.minerKey, ops, microCredits, gpuSeconds: message.gpuSeconds, createdAtMs: nowMs,
    };
    let credited: boolean;
    try {
      credited = await this.ctx.jobs.complete(lease, entry, Float32Array.from(tile), nowMs);
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      // Nothing was written: the unit goes back in the queue and the miner is told why, without blame.
      scheduler.release(lease);
      log('storage-error', { session: this.id, miner: this.minerKey, unit: unit.id, code: err.code, message: err.message });
      return this.send({ type: 'rejected', unitId: unit.id, code: 'internal', message: err.message });
    }
    if (!credited) return this.send({ type: 'rejected', unitId: unit.id, code: 'replayed-result', message: `unit ${unit.id} was already credited` });
    this.unitsAccepted++;
    await this.recordOutcome('accepted');
    const receipt = await signReceipt(signingKey.privateKey, {
      unitId: unit.id, jobId: unit.jobId, kind: precision === 'f16' ? 'gemm-f16' : 'gemm', minerKey: minerKeyBytes, coordinatorKey: signingKey.publicKey,
      ops, microCredits, gpuSeconds: message.gpuSeconds, joules: 0, joulesSource: 'none', issuedAtMs: BigInt(nowMs),
    });
    log('credit', { session: this.id, miner: this.minerKey, unit: unit.id, job: unit.jobId, ops, microCredits, gpuSeconds: message.gpuSeconds });
    this.send({ type: 'receipt', receipt });
  }

  /**
   * A result for a lease this session does not hold. A lease that ran out or was given back is an honest miner's
   * bad luck; a lease already paid (a replay), another miner's lease, or one never issued is an offence.
   */
  private resultForNoLease(message: Extract<MinerMessage, { type: 'result' }>): Promise<void> {
    const ended = this.ctx.scheduler.endedLease(message.leaseId);
    if (ended && ended.sessionId === this.id && ended.unitId === message.unitId && ended.end !== 'completed') {
      this.send({ type: 'rejected', unitId: message.unitId, code: 'lease-expired', message: `lease ${message.leaseId} ended (${ended.end}) before its result arrived` });
      return Promise.resolve();
    }
    if (ended && ended.sessionId === this.id && ended.end === 'completed') {
      return this.reject(message.unitId, 'replayed-result', `lease ${message.leaseId} was already completed and paid`);
    }
    return this.reject(message.unitId, 'unknown-lease', `lease ${message.leaseId} for unit ${message.unitId} is not held by this miner`);
  }

  /** Refuses a result without credit and lowers the miner's reputation; a ban closes the session. */
  private async reject(unitId: string, code: ProtocolError['code'], message: string): Promise<void> {
    this.unitsRejected++;
    log('result-rejected', { session: this.id, miner: this.minerKey, unit: unitId, code, message });
    this.send({ type: 'rejected', unitId, code, message });
    const reputation = await this.recordOutcome('rejected');
    if (reputation && isBanned(reputation, Date.now())) this.refuseBanned(reputation);
  }

  private async recordOutcome(outcome: Outcome): Promise<Reputation | undefined> {
    if (!this.minerKey) return undefined;
    const nowMs = Date.now();
    return this.ctx.ledger.updateReputation(this.minerKey, (current) => nextReputation(current, outcome, nowMs));
  }

  private refuseBanned(reputation: Reputation): void {
    log('miner-banned', { session: this.id, miner: reputation.minerKey, score: reputation.score, until: reputation.bannedUntilMs });
    const until = new Date(reputation.bannedUntilMs).toISOString();
    this.sendError('banned', `this wallet key is refused work until ${until} after ${reputation.rejected} rejected results`);
    this.close('banned');
  }

  /** Closes the session after what is queued has gone out, so the miner can read why. */
  private close(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    setTimeout(() => this.closeConnection(reason), 250);
  }

  private sendError(code: ProtocolError['code'], message: string): void {
    this.frameError({ code, message });
  }

  private send(message: Omit1<Outgoing>): void {
    this.sendBytes(encodeMessage({ ...message, v: PROTOCOL_VERSION }));
  }
}

/** A unit's operands as its lease carries them: an f16 job's as the halves themselves, half the bytes of f32. */
function leaseOperands(job: GemmJob, unit: GemmUnit): { a: Tensor; b: Tensor } {
  const aShape = [unit.rows, unit.depth];
  const bShape = [unit.depth, unit.cols];
  if (job.precision === 'f16') {
    const { a, b } = unitHalves(job, unit);
    return { a: f16Tensor(aShape, a), b: f16Tensor(bShape, b) };
  }
  const { a, b } = unitOperands(job, unit);
  return { a: f32Tensor(aShape, a), b: f32Tensor(bShape, b) };
}
