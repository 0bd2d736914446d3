// Settlement, whatever the transport: a result for a lease is shape-checked, its claims weighed, verified by its
// kind, then credited once, reflected in the miner's reputation and receipted. A miner session (WebRTC today) or
// any other transport calls settle() and sends what it answers.
import type { ProtocolError } from '../protocol/errors.ts';
import type { Engine, Receipt } from '../protocol/messages.ts';
import type { Tensor } from '../protocol/tensor.ts';
import { microCreditsFor, type AnyWorkKind, type VerifyContext } from '../work/kind.ts';
import { checkGpuSeconds } from './claims.ts';
import { checkEnergy } from './energy-claims.ts';
import type { UnitEnergy } from '../protocol/energy.ts';
import { auditMiner, auditProbability, auditStalledSoon, drawAudit, forfeitAll, inMinersTurn, receiptFor, type MinerNotice } from './audits.ts';
import { lostReceipt, lostReceipts } from './lost-receipts.ts';
import type { Jobs } from './jobs.ts';
import { LedgerError, type CreditEnergy, type CreditEntry, type Ledger, type Reputation } from './ledger/ledger.ts';
import { log } from './log.ts';
import { noMetrics, type MetricsRecorder } from './metrics.ts';
import type { Lease, WorkQueue } from './queue.ts';
import { isBanned, nextReputation, type Outcome } from './reputation.ts';
import type { SigningKey } from './signing-key.ts';

export interface SettlementContext {
  queue: WorkQueue;
  jobs: Jobs;
  ledger: Ledger;
  signingKey: SigningKey;
  verify: VerifyContext;
  /** Told every verdict (src/coordinator/metrics.ts); none when left out. */
  metrics?: MetricsRecorder;
  /** Delivers a notice to a miner's live session, if any: verdicts of audits it did not wait for (src/coordinator/audits.ts). */
  tell?: (minerKey: string, notice: MinerNotice) => void;
  /** Test hooks at the points where a crash loses the most: afterCredit runs once a credit is committed, before its receipt is signed. */
  crashPoints?: { afterCredit?: (unitId: string) => void };
}

/** The miner a result came from, as its transport authenticated it. */
export interface Claimant {
  sessionId: string;
  /** hex of the wallet key */
  minerKey: string;
  minerKeyBytes: Uint8Array;
  /** The adapter model it declared in its hello (self-reported), for the efficiency table. */
  adapter?: string;
}

/** A result as it arrived: which lease, the output, and what the miner claims about it. */
export interface ResultClaim {
  leaseId: string;
  unitId: string;
  gpuSeconds: number;
  output: Tensor;
  /** The miner's energy claim, if it measured one: checked for plausibility, signed, stored; never paid for. */
  energy?: UnitEnergy;
  /** When the lease went out to the miner, for the wall-time bound on its claimed GPU time. */
  leaseSentAtMs: number | undefined;
  /** The engine the miner says the unit ran on; its kind decides what that changes (rate, receipt kind). */
  engine?: Engine;
  /** A span's parts, as the miner echoes them from its lease: what it is sent receipts again for, if they are its. */
  parts?: readonly string[];
}

/**
 * What to answer: a receipt, or a rejection with its code. `offence`: the rejection lowered the miner's reputation
 * (a bad result, not bad luck); `banned` is its record when that reputation now bans it. For a kind that audits a
 * sample: `pending` (credit held), `settled` (this result was audited and passed: receipts for it and for the miner's
 * pending credits older than its bond), or a rejection that `forfeited` all of them.
 */
export type Settlement =
  | { type: 'receipt'; receipt: Receipt; /** a receipt signed again for a credit made before (lost-receipts.ts) */ again?: true }
  | {
    type: 'receipts';
    /** a span's: one per part credited */
    receipts: Receipt[];
    again?: true;
    /**
     * the span's parts that got no receipt, each with why, without blame: a storage failure kept its credit from being
     * stored (it waits again, for any miner), or it was credited already
     */
    refusedParts?: { unitId: string; error: ProtocolError }[];
  }
  | { type: 'pending'; unitId: string; jobId: string; kind: string; ops: bigint; microCredits: bigint }
  | { type: 'settled'; receipts: Receipt[] }
  | { type: 'rejected'; error: ProtocolError; offence: boolean; banned?: Reputation; forfeited?: { unitIds: string[]; microCredits: bigint } };

/** What settlement learnt on its way to a verdict, for the metrics. */
interface Seen {
  kind: string;
  verifySeconds?: number;
}

export async function settle(ctx: SettlementContext, miner: Claimant, claim: ResultClaim): Promise<Settlement> {
  const seen: Seen = { kind: 'unknown' };
  const settlement = await settleClaim(ctx, miner, claim, seen);
  const metrics = ctx.metrics ?? noMetrics;
  // Credits settled by an audit are counted where they are settled (audits.ts), whoever waited for them.
  if ((settlement.type === 'receipt' || settlement.type === 'receipts') && !settlement.again) {
    const receipts = settlement.type === 'receipt' ? [settlement.receipt] : settlement.receipts;
    // A span is verified in one call: its time is shared among its parts' receipts.
    const verifySeconds = (seen.verifySeconds ?? 0) / receipts.length;
    for (const { ops, microCredits, joules, joulesSource } of receipts) {
      metrics.verified({ kind: seen.kind, minerKey: miner.minerKey, ops, microCredits, verifySeconds, joules, joulesSource });
    }
  }
  if (settlement.type === 'rejected') {
    const { code, message } = settlement.error;
    metrics.rejected({ kind: seen.kind, minerKey: miner.minerKey, reason: code, message, verifySeconds: seen.verifySeconds });
  }
  return settlement;
}

async function settleClaim(ctx: SettlementContext, miner: Claimant, claim: ResultClaim, seen: Seen): Promise<Settlement> {
  const { queue } = ctx;
  const lease = await queue.leaseFor(claim.leaseId, miner.sessionId);
  if (!lease || lease.unit.id !== claim.unitId) return resultForNoLease(ctx, miner, claim);
  const { unit } = lease;
  const state = await queue.job(unit.jobId);
  if (!state || state.job === null) throw new Error(`lease ${lease.id} names job ${unit.jobId}, which is not open`);
  const { kind, job } = state;
  seen.kind = kind.name;

  const refuse = async (error: ProtocolError): Promise<Settlement> => {
    await queue.release(lease);
    return reject(ctx, miner, unit.id, error);
  };
  const decoded = kind.decodeResult(job, unit, claim.output);
  if (!decoded.ok) return refuse(decoded.error);
  const ops = kind.ops(unit);
  const wallSeconds = (Date.now() - (claim.leaseSentAtMs ?? lease.leasedAtMs)) / 1000;
  const implausible = checkGpuSeconds(claim.gpuSeconds, ops, wallSeconds);
  if (implausible) return refuse(implausible);
  const verifyStartedMs = performance.now();
  const verdict = await kind.verify(ctx.verify, job, unit, decoded.value);
  seen.verifySeconds = (performance.now() - verifyStartedMs) / 1000;
  if (!verdict.ok) {
    // For a kind that audits, a result its cheap checks prove wrong is a failed audit that cost nothing: the miner's
    // pending credits, its bond, are forfeited as when a re-run disagrees.
    if (kind.audit) return inMinersTurn(ctx, miner.minerKey, () => forfeitOnCheapCheck(ctx, miner, lease, verdict.error));
    return refuse(verdict.error);
  }

  const rate = kind.microCreditsPerGigaOp(job, claim.engine);
  const microCredits = microCreditsFor(ops, rate);
  const receiptKind = kind.receiptKind(job, claim.engine);
  const nowMs = Date.now();
  // The energy claim is weighed after the pay is fixed and cannot change it: implausible joules are dropped, not paid less.
  const energy = checkEnergy(claim.energy, ops, wallSeconds);
  if (energy.refused) log('energy-refused', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, method: claim.energy?.method, reason: energy.refused });
  const entry = {
    unitId: unit.id, jobId: unit.jobId, minerKey: miner.minerKey, ops, microCredits, gpuSeconds: claim.gpuSeconds, createdAtMs: nowMs, energy, wallSeconds, adapter: miner.adapter,
    receiptKind,
  };
  if (lease.parts) return creditSpan(ctx, miner, lease, kind, job, decoded.value, entry, rate);
  if (kind.audit) return inMinersTurn(ctx, miner.minerKey, () => holdForAudit(ctx, miner, lease, entry, decoded.value, seen));
  let credited: boolean;
  try {
    credited = await ctx.jobs.complete(lease, kind, entry, decoded.value, nowMs);
  } catch (err) {
    if (!(err instanceof LedgerError)) throw err;
    // Nothing was written: the unit goes back in the queue and the miner is told why, without blame.
    await queue.release(lease);
    log('storage-error', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, code: err.code, message: err.message });
    return { type: 'rejected', error: { code: 'internal', message: err.message }, offence: false };
  }
  if (!credited) return { type: 'rejected', error: { code: 'replayed-result', message: `unit ${unit.id} was already credited` }, offence: false };
  ctx.crashPoints?.afterCredit?.(unit.id);
  await recordOutcome(ctx.ledger, miner.minerKey, 'accepted');
  // Signed from the entry as stored, so that a receipt signed again from the ledger row (lost-receipts.ts) equals it.
  const receipt = await receiptFor(ctx, entry, entry.receiptKind, nowMs);
  log('credit', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, job: unit.jobId, kind: kind.name, receiptKind, ops, microCredits, gpuSeconds: claim.gpuSeconds, joules: energy.joules, joulesSource: energy.joulesSource });
  return { type: 'receipt', receipt };
}

/**
 * A span's result, checked by one call of its kind's verify: each part is credited as if leased alone (its own ops
 * and pay at `rate`, its share by ops of the span's claimed time and energy in `span`), stored, and receipted. Parts
 * credited before a storage error stay credited and receipted; the rest go back in the queue.
 */
async function creditSpan(ctx: SettlementContext, miner: Claimant, lease: Lease, kind: AnyWorkKind, job: unknown, result: unknown, span: CreditEntry & { energy: CreditEnergy; wallSeconds: number; receiptKind: string }, rate: bigint): Promise<Settlement> {
  const { energy } = span;
  const results = new Map<string, unknown>();
  const entries: CreditEntry[] = (lease.parts ?? []).map((part) => {
    const ops = kind.ops(part);
    const share = Number(ops) / Number(span.ops);
    results.set(part.id, kind.partResult?.(job, lease.unit, result, part));
    return {
      ...span, unitId: part.id, jobId: part.jobId, ops, microCredits: microCreditsFor(ops, rate), gpuSeconds: span.gpuSeconds * share, wallSeconds: span.wallSeconds * share,
      energy: { ...energy, joules: energy.joules * share, uncertaintyJoules: energy.uncertaintyJoules * share, aboveIdleJoules: energy.aboveIdleJoules === null ? null : energy.aboveIdleJoules * share },
    };
  });
  const { credited, error } = await ctx.jobs.completeSpan(lease, kind, entries, results, span.createdAtMs);
  if (error) log('storage-error', { session: miner.sessionId, miner: miner.minerKey, unit: lease.unit.id, code: error.code, message: error.message });
  const receipts: Receipt[] = [];
  for (const [i, entry] of entries.entries()) {
    if (!credited[i]) continue;
    ctx.crashPoints?.afterCredit?.(entry.unitId);
    await recordOutcome(ctx.ledger, miner.minerKey, 'accepted');
    receipts.push(await receiptFor(ctx, entry, span.receiptKind, span.createdAtMs));
    log('credit', { session: miner.sessionId, miner: miner.minerKey, unit: entry.unitId, span: lease.unit.id, job: entry.jobId, kind: kind.name, receiptKind: span.receiptKind, ops: entry.ops, microCredits: entry.microCredits, gpuSeconds: entry.gpuSeconds });
  }
  if (receipts.length > 0) {
    // Parts before a storage failure that were not credited had been credited already; the failure and those after it
    // were not stored.
    const refusedParts = entries.flatMap((entry, i): { unitId: string; error: ProtocolError }[] => {
      if (credited[i]) return [];
      if (i < credited.length) return [{ unitId: entry.unitId, error: { code: 'replayed-result', message: `unit ${entry.unitId} was already credited` } }];
      return [{ unitId: entry.unitId, error: { code: 'internal', message: error?.message ?? 'not stored' } }];
    });
    return refusedParts.length > 0 ? { type: 'receipts', receipts, refusedParts } : { type: 'receipts', receipts };
  }
  if (error) return { type: 'rejected', error: { code: 'internal', message: error.message }, offence: false };
  return { type: 'rejected', error: { code: 'replayed-result', message: `the units of span ${lease.unit.id} were already credited` }, offence: false };
}

/**
 * A result that passed its kind's cheap checks, for a kind that audits a sample: its credit is held as pending, and
 * with the probability its miner's record sets (audits.ts) it is audited now: settling it and the miner's credits
 * older than its bond, or forfeiting all of them.
 */
async function holdForAudit(ctx: SettlementContext, miner: Claimant, lease: Lease, entry: CreditEntry, result: unknown, seen: Seen): Promise<Settlement> {
  const { unit } = lease;
  // The lease may have run out while this miner's earlier results were audited: the unit is someone else's now.
  if (!(await ctx.queue.leaseFor(lease.id, miner.sessionId))) {
    return { type: 'rejected', error: { code: 'lease-expired', message: `lease ${lease.id} ended before its result's turn came` }, offence: false };
  }
  const state = await ctx.queue.job(unit.jobId);
  if (!state || state.job === null) throw new Error(`lease ${lease.id} names job ${unit.jobId}, which is not open`);
  const { kind, job } = state;
  let held: boolean;
  try {
    held = await ctx.jobs.hold(lease, kind, entry, result, entry.createdAtMs);
  } catch (err) {
    if (!(err instanceof LedgerError)) throw err;
    await ctx.queue.release(lease);
    log('storage-error', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, code: err.code, message: err.message });
    return { type: 'rejected', error: { code: 'internal', message: err.message }, offence: false };
  }
  if (!held) return { type: 'rejected', error: { code: 'replayed-result', message: `unit ${unit.id} was already credited or is pending` }, offence: false };
  ctx.metrics?.held({ kind: kind.name, minerKey: miner.minerKey, microCredits: entry.microCredits });
  const probability = auditProbability(await ctx.ledger.auditsPassed(miner.minerKey));
  if (!drawAudit(ctx.verify.random, probability)) {
    log('credit-pending', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, job: unit.jobId, kind: kind.name, ops: entry.ops, microCredits: entry.microCredits, auditProbability: probability });
    // This may have been the job's last unit to come back, with the others held too: they are audited without waiting for a miner.
    auditStalledSoon(ctx, unit.jobId);
    return { type: 'pending', unitId: unit.id, jobId: unit.jobId, kind: entry.receiptKind ?? kind.receiptKind(job), ops: entry.ops, microCredits: entry.microCredits };
  }
  const auditStartedMs = performance.now();
  const outcome = await auditMiner(ctx, kind, job, unit, result, miner.minerKey);
  seen.verifySeconds = (seen.verifySeconds ?? 0) + (performance.now() - auditStartedMs) / 1000;
  if (!outcome.passed) {
    log('result-rejected', { session: miner.sessionId, miner: miner.minerKey, unit: unit.id, code: outcome.error.code, message: outcome.error.message });
    return { type: 'rejected', error: outcome.error, offence: true, banned: outcome.banned, forfeited: outcome.forfeited };
  }
  auditStalledSoon(ctx, unit.jobId);
  return { type: 'settled', receipts: outcome.receipts };
}

async function forfeitOnCheapCheck(ctx: SettlementContext, miner: Claimant, lease: Lease, error: ProtocolError): Promise<Settlement> {
  await ctx.queue.release(lease);
  const forfeited = await forfeitAll(ctx, miner.minerKey, error);
  const kind = (await ctx.queue.job(lease.unit.jobId))?.kind.name ?? 'unknown';
  ctx.metrics?.audited({ kind, minerKey: miner.minerKey, outcome: 'failed', reason: error.code, releasedMicroCredits: 0n, forfeitedMicroCredits: forfeited.microCredits });
  const rejected = await reject(ctx, miner, lease.unit.id, error);
  return { ...rejected, forfeited };
}

/**
 * A result for a lease this miner does not hold. A unit already credited to this key gets its receipt again. A lease
 * that ran out or was given back, or one from another coordinator of a fleet, is an honest miner's bad luck; a lease
 * already settled otherwise, another miner's lease, or one never issued is an offence.
 */
async function resultForNoLease(ctx: SettlementContext, miner: Claimant, claim: ResultClaim): Promise<Settlement> {
  // Credited to this key already, its receipt lost with a link or a coordinator: the receipt again, no credit.
  if (claim.parts) {
    const receipts = await lostReceipts(ctx, miner.sessionId, miner.minerKey, claim.parts);
    if (receipts.length > 0) return { type: 'receipts', receipts, again: true, ...uncreditedParts(claim.parts, receipts) };
  }
  const receipt = await lostReceipt(ctx, miner.sessionId, miner.minerKey, claim.unitId);
  if (receipt) return { type: 'receipt', receipt, again: true };
  const ended = await ctx.queue.endedLease(claim.leaseId);
  if (ended && ended.sessionId === miner.sessionId && ended.unitId === claim.unitId && ended.end !== 'completed') {
    return { type: 'rejected', error: { code: 'lease-expired', message: `lease ${claim.leaseId} ended (${ended.end}) before its result arrived` }, offence: false };
  }
  if (ended && ended.sessionId === miner.sessionId && ended.end === 'completed') {
    return reject(ctx, miner, claim.unitId, { code: 'replayed-result', message: `lease ${claim.leaseId} was already completed and paid` });
  }
  // A fleet's page whose coordinator died sends its result to another, which cannot tell whose lease it was: refused
  // without blame, unless the unit is credited (to another key, this key's having been answered above).
  if ((await ctx.queue.leasedElsewhere?.(claim.leaseId)) && !(await ctx.ledger.creditOf(claim.unitId))) {
    const message = `lease ${claim.leaseId} for unit ${claim.unitId} went out from another coordinator of this fleet, and its result was not credited there`;
    log('result-rejected', { session: miner.sessionId, miner: miner.minerKey, unit: claim.unitId, code: 'unknown-lease', message });
    return { type: 'rejected', error: { code: 'unknown-lease', message }, offence: false };
  }
  // Given out before this coordinator restarted, whose queue forgot it: a page that kept its result across the
  // restart (or its own reload) is told its lease ended, without blame, unless the unit is credited (to another key).
  if ((await ctx.queue.leasedBeforeRestart?.(claim.leaseId)) && !(await ctx.ledger.creditOf(claim.unitId))) {
    const message = `lease ${claim.leaseId} was given out before this coordinator restarted, and ended with it`;
    log('result-rejected', { session: miner.sessionId, miner: miner.minerKey, unit: claim.unitId, code: 'lease-expired', message });
    return { type: 'rejected', error: { code: 'lease-expired', message }, offence: false };
  }
  return reject(ctx, miner, claim.unitId, { code: 'unknown-lease', message: `lease ${claim.leaseId} for unit ${claim.unitId} is not held by this miner` });
}

/** Refuses a result without credit and lowers the miner's reputation. */
async function reject(ctx: SettlementContext, miner: Claimant, unitId: string, error: ProtocolError): Promise<Extract<Settlement, { type: 'rejected' }>> {
  log('result-rejected', { session: miner.sessionId, miner: miner.minerKey, unit: unitId, code: error.code, message: error.message });
  const reputation = await recordOutcome(ctx.ledger, miner.minerKey, 'rejected');
  return { type: 'rejected', error, offence: true, banned: isBanned(reputation, Date.now()) ? reputation : undefined };
}

function recordOutcome(ledger: Ledger, minerKey: string, outcome: Outcome): Promise<Reputation> {
  const nowMs = Date.now();
  return ledger.updateReputation(minerKey, (current) => nextReputation(current, outcome, nowMs));
}

/**
 * A span's parts that got no receipt when its result came again: their credit was not stored with the span's (a
 * storage failure), and they were queued again. Told apart, without blame, so that the miner stops waiting for them.
 */
export function uncreditedParts(parts: readonly string[], receipts: readonly Receipt[]): { refusedParts?: { unitId: string; error: ProtocolError }[] } {
  const receipted = new Set(receipts.map((r) => r.unitId));
  const refusedParts = [...new Set(parts)].filter((unitId) => !receipted.has(unitId)).map((unitId) => ({
    unitId, error: { code: 'lease-expired' as const, message: `unit ${unitId} was not credited with its span, and was queued again` },
  }));
  return refusedParts.length > 0 ? { refusedParts } : {};
}
