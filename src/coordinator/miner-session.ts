// One miner's connection: challenge and hello, leases, results verified before credit, receipts, heartbeat.
import { randomBytes } from 'node:crypto';
import { encodeMessage, parseMinerMessage } from '../protocol/codec.ts';
import type { ProtocolError } from '../protocol/errors.ts';
import { MAX_FORFEITED_UNITS, PENDING_CHECK_EVERY_MS, type AdapterInfo, type CoordinatorMessageInput, type MinerMessage } from '../protocol/messages.ts';
import { helloChallengeBytes, signChallenge, toHex, verifySignature } from '../protocol/receipt.ts';
import { HEARTBEAT_MS, SilenceClock } from '../protocol/heartbeat.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';
import type { Tensor } from '../protocol/tensor.ts';
import type { MinerCapabilities, OperandBlock, UnitBase } from '../work/kind.ts';
import { LedgerError, type Reputation } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { OperandBlobs } from './operand-blobs.ts';
import type { JobState, Lease } from './queue.ts';
import { MINER_MESSAGES, TokenBucket, type RateLimit } from './rate-limit.ts';
import { isBanned } from './reputation.ts';
import { leaseSize, MeasuredSpeed, type LeaseSize } from './lease-sizing.ts';
import { KeyTurns } from './key-turns.ts';
import { adapterModel } from './rankings.ts';
import type { MinerNotice } from './audits.ts';
import { lostReceipts } from './lost-receipts.ts';
import { settle, uncreditedParts, type SettlementContext } from './settle.ts';

/** A miner asking for work when there is none is told to ask again after this long. */
export const NO_WORK_RETRY_MS = 500;
/** A miner asking for work while the storage is down is told to ask again after this long. */
export const STORAGE_DOWN_RETRY_MS = 2_000;
/** A session that sends this many messages that cannot be parsed is abusing the coordinator and is closed. */
export const MAX_PROTOCOL_ERRORS = 200;
/** A session that keeps sending this many messages over its rate limit is closed. */
export const MAX_RATE_LIMITED = 1_000;
/** A connection that has not proved a wallet key this long after its challenge is closed. */
export const HELLO_TIMEOUT_MS = 10_000;

/** Every coordinator in this process checks a key's lease allowance in turns: see workRequest. */
const LEASE_TURNS = new KeyTurns();

type Outgoing = Extract<CoordinatorMessageInput, { type: string }>;
type Omit1<T> = T extends unknown ? Omit<T, 'v'> : never;

export interface SessionContext extends SettlementContext {
  rateLimit?: RateLimit;
  /** Every live session of this wallet key (this one included): a key's leases are bounded over all of them. */
  sessionsOf?: (minerKey: string) => readonly string[];
  /** Serves the blocks leases name by hash; without it, blocks are carried in the lease. */
  operandBlobs?: OperandBlobs;
  /** How leases are sized (default leaseSize): tests that need spans whatever the machine's speed set their own. */
  leaseSize?: typeof leaseSize;
}

export class MinerSession {
  readonly nonce = new Uint8Array(randomBytes(32));
  /** hex of the wallet key, once the miner proved it holds it */
  minerKey: string | null = null;
  private minerKeyBytes: Uint8Array | null = null;
  /** The adapter model the hello declared, for the efficiency table. */
  private adapter = '';
  /** What the miner said it runs; until hello, nothing. */
  private capabilities: MinerCapabilities = { kinds: [], precisions: [], features: [] };
  /** The miner's silence: past its deadAfterMs() it is dropped and its leases re-leased. */
  private readonly silence = new SilenceClock(Date.now());
  /** What the miner said it is in its hello (for the operator's view); null until then. */
  declared: { adapter: AdapterInfo; backend: string; kinds: readonly string[]; connectedAtMs: number } | null = null;
  private readonly openedAtMs = Date.now();
  /** The challenge must be the first message: no ping goes out before it (its signing is asynchronous). */
  private challenged = false;
  /** Called once the miner has proved its key: the transport may then accept larger messages. */
  onWelcome: () => void = () => undefined;
  unitsAccepted = 0;
  unitsRejected = 0;
  private protocolErrors = 0;
  private rateLimited = 0;
  private rateLimitToldAtMs = 0;
  private closing = false;
  /** When this connection last asked after its pending credits (pendingCheck). */
  private pendingCheckedAtMs = -Infinity;
  private readonly bucket: TokenBucket;
  /** lease id -> when its lease message was sent (for the wall-time bound on claimed GPU time) and its unit's ops */
  private readonly leasesOut = new Map<string, { sentAtMs: number; ops: bigint }>();
  /** This session's speed as measured here, on its verified results: what sizes its leases in flight. */
  private readonly speed = new MeasuredSpeed();
  /** The ops of a unit of the lease last sent (one part of a span): what the next leases are sized in. */
  private lastUnitOps = 0n;

  constructor(
    readonly id: string,
    private readonly ctx: SessionContext,
    private readonly sendBytes: (bytes: Uint8Array) => void,
    private readonly closeConnection: (reason: string) => void,
  ) {
    this.bucket = new TokenBucket(ctx.rateLimit ?? MINER_MESSAGES, Date.now());
  }

  /** Sends the challenge, signed over what binds it to this channel (miner-connections.ts: IncomingConnection.channelBinding). */
  async start(channelBinding: Uint8Array): Promise<void> {
    const body = { coordinatorKey: this.ctx.signingKey.publicKey, nonce: this.nonce, heartbeatMs: HEARTBEAT_MS };
    const signature = await signChallenge(this.ctx.signingKey.privateKey, body, channelBinding);
    this.send({ type: 'challenge', ...body, signature });
    this.challenged = true;
  }

  /** Any frame counts as a sign of life: a large result takes many frames to arrive. */
  heard(): void {
    this.silence.heard();
  }

  /** Called every heartbeat: pings the miner, and closes the connection if it went silent. */
  tick(nowMs: number): void {
    if (!this.minerKey && nowMs - this.openedAtMs > HELLO_TIMEOUT_MS) {
      this.closeConnection(`no hello ${nowMs - this.openedAtMs} ms after the challenge`);
      return;
    }
    const silentMs = this.silence.tick(nowMs);
    if (this.silence.dead) {
      this.closeConnection(`silent for ${silentMs} ms`);
      return;
    }
    if (this.challenged) this.send({ type: 'ping', nonce: nowMs });
  }

  /** A message or frame that could not be read: an error reply; many of them close the session as abuse. */
  frameError(error: ProtocolError): void {
    log('protocol-error', { session: this.id, miner: this.minerKey, code: error.code, message: error.message });
    this.send({ type: 'error', code: error.code, message: error.message });
    if (++this.protocolErrors >= MAX_PROTOCOL_ERRORS) this.close(`${this.protocolErrors} malformed messages`);
  }

  async receive(bytes: Uint8Array): Promise<void> {
    if (this.closing) return;
    const parsed = parseMinerMessage(bytes);
    // A result for a lease this session was sent is owed, and bounded by its leases: never rate-limited.
    if (parsed.ok && parsed.value.type === 'result' && this.leasesOut.has(parsed.value.leaseId)) return this.result(parsed.value);
    const nowMs = Date.now();
    if (!this.bucket.take(nowMs)) return this.overLimit(parsed.ok ? parsed.value.type : undefined, nowMs);
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
        // A request answered with a lease is accounted for by the lease allowance, not the rate limit.
        if (await this.workRequestOrStorageDown()) this.bucket.refund();
        return;
      case 'result':
        return this.result(message);
      case 'pending-check':
        return this.pendingCheck(message);
    }
  }

  /**
   * A message over the rate limit is dropped. A work request is still answered, with no-work and when to ask again,
   * so that an honest miner never waits on a request the coordinator dropped without a word; anything else is told
   * once a second at most, since answering every dropped message would itself be a flood.
   */
  private overLimit(type: MinerMessage['type'] | undefined, nowMs: number): void {
    if (++this.rateLimited >= MAX_RATE_LIMITED) return this.close(`${this.rateLimited} messages over the rate limit`);
    const retryAfterMs = this.bucket.retryAfterMs();
    if (type === 'work-request') {
      this.send({ type: 'no-work', retryAfterMs, reason: `rate-limited: too many messages; ask again after ${retryAfterMs} ms` });
      return;
    }
    if (nowMs - this.rateLimitToldAtMs >= 1_000) {
      this.rateLimitToldAtMs = nowMs;
      this.send({ type: 'error', code: 'rate-limited', message: `too many messages; retry after ${retryAfterMs} ms` });
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
    this.adapter = adapterModel(message.adapter);
    this.capabilities = { kinds: message.kinds, precisions: message.precisions, features: message.features };
    this.declared = { adapter: message.adapter, backend: message.backend, kinds: message.kinds, connectedAtMs: Date.now() };
    this.onWelcome();
    log('miner-hello', {
      session: this.id, miner: this.minerKey, score: reputation.score, backend: message.backend, kinds: message.kinds.join(','),
      precisions: message.precisions.join(','), features: message.features.join(','), vendor: message.adapter.vendor, architecture: message.adapter.architecture,
    });
    const blobs = this.ctx.operandBlobs;
    this.send({ type: 'welcome', ...(blobs ? { operandToken: blobs.tokenFor(this.id) } : {}) });
  }

  /**
   * While the storage is down (a fleet's database unreachable) the coordinator leases nothing and tells the miner
   * why and when to ask again; it leases again as soon as the storage answers.
   */
  private async workRequestOrStorageDown(): Promise<boolean> {
    try {
      return await this.workRequest();
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      log('storage-error', { session: this.id, miner: this.minerKey, event: 'lease', code: err.code, message: err.message });
      this.send({ type: 'no-work', retryAfterMs: STORAGE_DOWN_RETRY_MS, reason: `not leasing: ${err.message}`.slice(0, 256) });
      return false;
    }
  }

  /** Answers a request for work; true when it leased a unit. */
  private async workRequest(): Promise<boolean> {
    if (!this.minerKey) {
      this.sendError('not-authenticated', 'say hello with a signed challenge before asking for work');
      return false;
    }
    const minerKey = this.minerKey;
    // The allowance is checked and the lease taken in one turn per key: on a fleet's database each is a round trip,
    // and requests sent at once (from one connection or several) would otherwise all see the same count.
    const granted = await LEASE_TURNS.run(minerKey, () => this.leaseWithinAllowance(minerKey));
    if (!granted) return false;
    const { lease, size } = granted;
    const { queue } = this.ctx;
    const state = await queue.job(lease.unit.jobId);
    if (!state || state.job === null) throw new Error(`lease ${lease.id} names job ${lease.unit.jobId}, which is not open`);
    const { unit } = lease;
    const { kind, job } = state;
    const needs = kind.requirements(job);
    const ops = kind.ops(unit);
    const parts = lease.parts?.map((part) => part.id);
    const units = parts?.length ?? 1;
    log('lease', {
      session: this.id, miner: this.minerKey, unit: unit.id, lease: lease.id, kind: kind.name, precision: needs.precision, features: needs.features.join(','),
      inFlight: size.leases, parts: units,
    });
    this.leasesOut.set(lease.id, { sentAtMs: Date.now(), ops });
    this.lastUnitOps = ops / BigInt(units);
    this.ctx.metrics?.leased(kind.name, units);
    const { blocks, ...payload } = kind.leasePayload(job, unit);
    this.send({
      type: 'lease',
      leaseId: lease.id,
      unitId: unit.id,
      kind: kind.name,
      ops,
      deadlineMs: lease.deadlineAtMs - Date.now(),
      inFlight: size.leases,
      ...(parts ? { parts } : {}),
      ...payload,
      ...this.blockPayload(lease.id, state, unit, payload.operands, blocks),
    });
    return true;
  }

  /** A lease, if this key's record and its leases held allow one and there is work; else the miner is told why not. */
  private async leaseWithinAllowance(minerKey: string): Promise<{ lease: Lease; size: LeaseSize } | undefined> {
    const reputation = await this.ctx.ledger.reputation(minerKey);
    if (isBanned(reputation, Date.now())) {
      this.refuseBanned(reputation);
      return undefined;
    }
    const { queue } = this.ctx;
    const size = (this.ctx.leaseSize ?? leaseSize)(reputation, this.speed.opsPerSecond, this.lastUnitOps);
    const held = await queue.leaseCount(this.ctx.sessionsOf?.(minerKey) ?? [this.id]);
    if (held >= size.leases) {
      const reason = `this wallet key holds ${held} lease${held === 1 ? '' : 's'}, as many as it may now (${size.leases}); return a result first`;
      this.send({ type: 'no-work', retryAfterMs: NO_WORK_RETRY_MS, reason });
      return undefined;
    }
    const lease = await queue.lease(this.id, Date.now(), this.capabilities, size.units);
    if (!lease) this.send({ type: 'no-work', retryAfterMs: NO_WORK_RETRY_MS });
    return lease && { lease, size };
  }

  /** A lease's blocks: named by hash where the coordinator serves operands, else carried like its other operands. */
  private blockPayload(leaseId: string, state: JobState, unit: UnitBase, operands: Record<string, Tensor>, blocks: Record<string, OperandBlock> | undefined) {
    if (!blocks) return {};
    const blobs = this.ctx.operandBlobs;
    if (blobs) return { refs: blobs.grant(leaseId, this.id, state, unit, blocks) };
    const carried = { ...operands };
    for (const [name, { dtype, shape, bytes }] of Object.entries(blocks)) carried[name] = { dtype, shape, data: bytes() };
    return { operands: carried };
  }

  private async result(message: Extract<MinerMessage, { type: 'result' }>): Promise<void> {
    const minerKeyBytes = this.minerKeyBytes;
    if (!this.minerKey || !minerKeyBytes) return this.sendError('not-authenticated', 'say hello before sending results');
    const out = this.leasesOut.get(message.leaseId);
    this.leasesOut.delete(message.leaseId);
    const leaseSentAtMs = out?.sentAtMs;
    this.ctx.operandBlobs?.revoke(message.leaseId);
    const holder = leaseSentAtMs === undefined ? await this.leaseHolder(message.leaseId, this.minerKey) : this.id;
    if (holder !== this.id && (await this.ctx.queue.endedLease(message.leaseId))?.end === 'completed') {
      // Sent again after a reconnection: the result was credited, and its receipt went out on the link that dropped.
      // The receipt again, without credit; a unit held pending or forfeited meanwhile is refused, without blame: an
      // honest miner cannot know which of its results arrived.
      const receipts = await lostReceipts(this.ctx, this.id, this.minerKey, message.parts ?? [message.unitId]);
      for (const receipt of receipts) this.send({ type: 'receipt', receipt });
      if (receipts.length > 0 && message.parts) this.refuseParts(uncreditedParts(message.parts, receipts).refusedParts);
      if (receipts.length > 0) return;
      const reason = `unit ${message.unitId} was already settled for this wallet key; its verdict went out on the connection that dropped`;
      log('result-rejected', { session: this.id, miner: this.minerKey, unit: message.unitId, code: 'replayed-result', message: reason });
      return this.send({ type: 'rejected', unitId: message.unitId, code: 'replayed-result', message: reason });
    }
    const settlement = await settle(
      this.ctx,
      { sessionId: holder, minerKey: this.minerKey, minerKeyBytes, adapter: this.adapter },
      {
        leaseId: message.leaseId, unitId: message.unitId, gpuSeconds: message.gpuSeconds, output: message.output, energy: message.energy, leaseSentAtMs,
        engine: message.engine, parts: message.parts,
      },
    );
    // Verified work done on this session's own lease: the speed its next leases are sized by.
    const again = (settlement.type === 'receipt' || settlement.type === 'receipts') && settlement.again;
    if (out && settlement.type !== 'rejected' && !again) this.speed.record(out.ops, out.sentAtMs, Date.now());
    switch (settlement.type) {
      case 'receipt':
        if (!settlement.again) this.unitsAccepted++;
        return this.send({ type: 'receipt', receipt: settlement.receipt });
      case 'receipts':
        if (!settlement.again) this.unitsAccepted += settlement.receipts.length;
        for (const receipt of settlement.receipts) this.send({ type: 'receipt', receipt });
        // Parts a storage failure kept from their credit are told apart, without blame: the page stops waiting for them.
        this.refuseParts(settlement.refusedParts);
        return;
      case 'pending':
        return this.send(settlement);
      case 'settled':
        this.unitsAccepted += settlement.receipts.length;
        for (const receipt of settlement.receipts) this.send({ type: 'receipt', receipt });
        return;
    }
    if (settlement.offence) this.unitsRejected++;
    this.send({ type: 'rejected', unitId: message.unitId, code: settlement.error.code, message: settlement.error.message });
    if (settlement.forfeited) this.tell({ type: 'forfeited', ...settlement.forfeited, reason: settlement.error.message });
    if (settlement.banned) this.refuseBanned(settlement.banned);
  }

  /**
   * Tells a miner what became of the credits it holds as pending: an audit run while its link was down (or on another
   * coordinator of a fleet) told no one. A receipt (signed again from the ledger) for each unit credited to this wallet
   * key, a forfeited notice for those it forfeited and did not earn again; nothing for the rest (still pending, or not
   * this key's). Three reads of the ledger, however many units; one check per connection per half a check period.
   */
  private async pendingCheck(message: Extract<MinerMessage, { type: 'pending-check' }>): Promise<void> {
    const minerKey = this.minerKey;
    if (!minerKey) return this.sendError('not-authenticated', 'say hello before asking after pending credits');
    const nowMs = Date.now();
    const everyMs = PENDING_CHECK_EVERY_MS / 2;
    if (nowMs - this.pendingCheckedAtMs < everyMs) return this.sendError('rate-limited', `pending credits are checked at most once every ${everyMs / 1000} s`);
    this.pendingCheckedAtMs = nowMs;
    const unitIds = [...new Set(message.unitIds)];
    const receipts = await lostReceipts(this.ctx, this.id, minerKey, unitIds);
    for (const receipt of receipts) this.send({ type: 'receipt', receipt });
    const credited = new Set(receipts.map((r) => r.unitId));
    const forfeited = await this.ctx.ledger.forfeitedUnits(minerKey, unitIds.filter((id) => !credited.has(id)));
    if (forfeited.length === 0) return;
    const pendingAgain = new Set((await this.ctx.ledger.pendingCredits({ minerKey })).map((c) => c.unitId));
    const lost = forfeited.filter((f) => !pendingAgain.has(f.unitId));
    if (lost.length === 0) return;
    log('forfeited-again', { session: this.id, miner: minerKey, units: lost.length });
    this.tell({
      type: 'forfeited',
      unitIds: lost.map((f) => f.unitId),
      microCredits: lost.reduce((sum, f) => sum + f.microCredits, 0n),
      reason: 'forfeited while this miner was away: an audit of this wallet key\'s results failed',
    });
  }

  /** A span's parts that got no receipt, told apart, each with why (no blame: see Settlement's refusedParts). */
  private refuseParts(parts: readonly { unitId: string; error: ProtocolError }[] | undefined): void {
    for (const { unitId, error } of parts ?? []) this.send({ type: 'rejected', unitId, code: error.code, message: error.message });
  }

  /** A verdict that is not the answer to a result just sent: receipts or a forfeiture from an audit run without this miner. */
  tell(notice: MinerNotice): void {
    if (notice.type === 'receipt') {
      this.unitsAccepted++;
      return this.send(notice);
    }
    // A miner holding more pending units than one notice names is told in several.
    for (let at = 0; at === 0 || at < notice.unitIds.length; at += MAX_FORFEITED_UNITS) {
      const unitIds = notice.unitIds.slice(at, at + MAX_FORFEITED_UNITS);
      this.send({ type: 'forfeited', unitIds, microCredits: at === 0 ? notice.microCredits : 0n, reason: notice.reason.slice(0, 256) });
    }
  }

  /**
   * The session a result's lease was sent on: this one, or another of the same wallet key (one that dropped, whose
   * leases are held a while for it, or one still open), so that a result finished while the link was down is
   * settled once it comes back on a new connection. Only the key that proved itself here can name those sessions.
   * A lease that ended (a replay of a paid result) names its session too, so the replay is refused as such.
   */
  private async leaseHolder(leaseId: string, minerKey: string): Promise<string> {
    const others = (this.ctx.sessionsOf?.(minerKey) ?? []).filter((id) => id !== this.id);
    if (others.length === 0 || (await this.ctx.queue.leaseFor(leaseId, this.id))) return this.id;
    for (const id of others) {
      if (await this.ctx.queue.leaseFor(leaseId, id)) return id;
    }
    const ended = await this.ctx.queue.endedLease(leaseId);
    return ended && others.includes(ended.sessionId) ? ended.sessionId : this.id;
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
