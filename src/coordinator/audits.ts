// Sampled audits, for kinds whose full check is a re-run (their WorkKind has `audit`): every result gets the kind's
// cheap checks and its credit is held as pending; a result is audited with a probability that falls with its miner's
// record; an audit that passes pays the audited unit and the miner's older pending credits but keeps its newest ones
// pending as a standing bond; one that fails forfeits them all. The pending credits are the bond a miner puts up by
// working: there is no stake anywhere.
import type { ProtocolError } from '../protocol/errors.ts';
import * as v from 'valibot';
import { JoulesSource, type Receipt } from '../protocol/messages.ts';
import { signReceipt } from '../protocol/receipt.ts';
import type { AnyWorkKind, RandomBytes, UnitBase, Verdict } from '../work/kind.ts';
import type { CreditEntry, PendingCredit, Reputation } from './ledger/ledger.ts';
import { log } from './log.ts';
import { isBanned, nextReputation } from './reputation.ts';
import type { SettlementContext } from './settle.ts';

/**
 * The rule: a miner that has passed `n` audits in a row (since its last failed one) has each result audited with
 * probability max(AUDIT_FLOOR, min(1, AUDIT_EVERY_UNIT_UNTIL / (n + 1))). A new key (n = 0, 1) is audited on every
 * unit; then 2/3, 1/2, 2/5, ... ; the floor of 5% is reached after 39 passed audits and holds for ever after. A
 * failed audit sets n back to 0: the miner is audited on every unit again.
 */
export const AUDIT_EVERY_UNIT_UNTIL = 2;
/** Never fewer than one result in twenty is audited, however good the record: see README "Why cheating loses". */
export const AUDIT_FLOOR = 0.05;

export function auditProbability(auditsPassedInARow: number): number {
  return Math.max(AUDIT_FLOOR, Math.min(1, AUDIT_EVERY_UNIT_UNTIL / (auditsPassedInARow + 1)));
}

/** What a cheat caught must lose in expectation, in units' pay: more than the one unit's compute it could save. */
export const BOND_EXPECTED_LOSS_UNITS = 2;

/**
 * The standing bond: after an audit that passes, with n audits now passed in a row (p = auditProbability(n)), the
 * miner's newest B = ceil(2 / p) pending credits other than the audited unit stay pending; the audited unit and the
 * older ones are paid. A cheat is caught with probability p and then forfeits at least those B units, so its
 * expected loss is p x B x one unit's pay >= 2 units' pay, against a gain under one unit's pay (the compute it
 * saved). B is 2 for a new key (p = 1), n + 1 while p = 2 / (n + 1), and 40 at the 5% floor. Computed in integers:
 * 2 / p is max(2, n + 1) below the floor and 2 x 20 at it, so no float rounding moves the ceiling.
 */
export function bondUnits(auditsPassedInARow: number): number {
  const floorOneIn = Math.round(1 / AUDIT_FLOOR);
  const belowFloor = Math.ceil((BOND_EXPECTED_LOSS_UNITS * (auditsPassedInARow + 1)) / AUDIT_EVERY_UNIT_UNTIL);
  return Math.min(BOND_EXPECTED_LOSS_UNITS * floorOneIn, Math.max(BOND_EXPECTED_LOSS_UNITS, belowFloor));
}

/** Whether to audit, drawn from the injected random source: a uniform 32-bit number below p * 2^32. */
export function drawAudit(random: RandomBytes, probability: number): boolean {
  if (probability >= 1) return true;
  const bytes = new Uint8Array(4);
  random(bytes);
  const u = new DataView(bytes.buffer).getUint32(0, true) / 2 ** 32;
  return u < probability;
}

/** What an audit's outcome tells the miner: receipts for the credits it settled, or what it forfeited. */
export type AuditOutcome =
  | { passed: true; receipts: Receipt[] }
  | { passed: false; error: ProtocolError; forfeited: { unitIds: string[]; microCredits: bigint }; banned?: Reputation };

/** Messages for a miner that are not answers to its last result: settled by an audit it did not wait for. */
export type MinerNotice =
  | { type: 'receipt'; receipt: Receipt }
  | { type: 'forfeited'; unitIds: string[]; microCredits: bigint; reason: string };

/**
 * Runs the kind's audit of one held result of this miner: if it passes, settles that unit and the miner's pending
 * credits older than its bond (bondUnits); if it fails, forfeits all of them, bond included. The kind's audit runs
 * its re-run off the event loop (onnxruntime-node on its own thread, src/coordinator/onnx-thread.ts).
 */
export async function auditMiner(
  ctx: SettlementContext, kind: AnyWorkKind, job: unknown, unit: UnitBase, result: unknown, minerKey: string,
): Promise<AuditOutcome> {
  if (!kind.audit) throw new Error(`kind ${kind.name} has no audit`);
  const startedMs = performance.now();
  const verdict: Verdict = await kind.audit(ctx.verify, job, unit, result);
  const auditSeconds = (performance.now() - startedMs) / 1000;
  const nowMs = Date.now();
  if (verdict.ok) {
    // Named while their jobs are open: a job that finishes with this settlement drops its kind's job.
    const receiptKinds = await receiptKindsOf(ctx, await ctx.ledger.pendingCredits({ minerKey }));
    const settled = await ctx.jobs.settlePending(minerKey, unit.id, bondUnits, nowMs);
    await ctx.ledger.updateReputation(minerKey, (current) => settled.reduce((r) => nextReputation(r, 'accepted', nowMs), current));
    const receipts = await Promise.all(settled.map((credit) => receiptFor(ctx, credit, credit.receiptKind ?? receiptKinds.get(credit.jobId) ?? kind.receiptKind(job), nowMs)));
    const microCredits = settled.reduce((sum, c) => sum + c.microCredits, 0n);
    for (const [i, c] of settled.entries()) {
      const { joules, joulesSource } = receipts[i];
      ctx.metrics?.verified({ kind: kind.name, minerKey, ops: c.ops, microCredits: c.microCredits, verifySeconds: c.unitId === unit.id ? auditSeconds : 0, joules, joulesSource });
    }
    ctx.metrics?.audited({ kind: kind.name, minerKey, outcome: 'passed', releasedMicroCredits: microCredits, forfeitedMicroCredits: 0n });
    // A job of one of these units may now have only other miners' held units left: they are audited without waiting.
    for (const jobId of new Set(settled.map((c) => c.jobId))) if (jobId !== unit.jobId) auditStalledSoon(ctx, jobId);
    log('audit-passed', { miner: minerKey, unit: unit.id, job: unit.jobId, kind: kind.name, settled: settled.length, microCredits });
    return { passed: true, receipts };
  }
  const forfeited = await forfeitAll(ctx, minerKey, verdict.error);
  const reputation = await ctx.ledger.updateReputation(minerKey, (current) => nextReputation(current, 'rejected', nowMs));
  ctx.metrics?.audited({ kind: kind.name, minerKey, outcome: 'failed', reason: verdict.error.code, releasedMicroCredits: 0n, forfeitedMicroCredits: forfeited.microCredits });
  log('audit-failed', { miner: minerKey, unit: unit.id, job: unit.jobId, kind: kind.name, forfeited: forfeited.unitIds.length, microCredits: forfeited.microCredits, message: verdict.error.message });
  return { passed: false, error: verdict.error, forfeited, banned: isBanned(reputation, nowMs) ? reputation : undefined };
}

/** Forfeits every pending credit of a miner proven to have returned a wrong result; their units are queued again. */
export async function forfeitAll(ctx: SettlementContext, minerKey: string, error: ProtocolError): Promise<{ unitIds: string[]; microCredits: bigint }> {
  const forfeited = await ctx.jobs.forfeitPending(minerKey, `${error.code}: ${error.message}`.slice(0, 256), Date.now());
  return { unitIds: forfeited.map((c) => c.unitId), microCredits: forfeited.reduce((sum, c) => sum + c.microCredits, 0n) };
}

/** The receipt kind of each open job of these credits. */
async function receiptKindsOf(ctx: SettlementContext, credits: readonly PendingCredit[]): Promise<Map<string, string>> {
  const kinds = new Map<string, string>();
  for (const jobId of new Set(credits.map((c) => c.jobId))) {
    const state = await ctx.queue.job(jobId);
    if (state && state.job !== null) kinds.set(jobId, state.kind.receiptKind(state.job));
  }
  return kinds;
}

/** A credit's receipt, issued at issuedAtMs: what the miner's wallet counts. */
export async function receiptFor(ctx: Pick<SettlementContext, 'signingKey'>, credit: CreditEntry, receiptKind: string, issuedAtMs: number): Promise<Receipt> {
  const energy = credit.energy;
  // Stored as it was signed-to-be when held: one of the protocol's sources, or none.
  const joulesSource = energy && v.is(JoulesSource, energy.joulesSource) ? energy.joulesSource : 'none';
  return signReceipt(ctx.signingKey.privateKey, {
    unitId: credit.unitId, jobId: credit.jobId, kind: receiptKind, minerKey: Uint8Array.from(Buffer.from(credit.minerKey, 'hex')), coordinatorKey: ctx.signingKey.publicKey,
    ops: credit.ops, microCredits: credit.microCredits, gpuSeconds: credit.gpuSeconds, joules: joulesSource === 'none' ? 0 : (energy?.joules ?? 0), joulesSource, issuedAtMs: BigInt(issuedAtMs),
  });
}

/** Each miner's turn, per coordinator: the tail of the chain of its results being held and audited. */
const minerTurns = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * Runs fn when this miner's earlier results have been held and audited, so that an audit that passes never settles a
 * result whose own audit is still running (and would fail), and a failed audit forfeits every credit held before it.
 */
export function inMinersTurn<T>(ctx: SettlementContext, minerKey: string, fn: () => Promise<T>): Promise<T> {
  const turns = minerTurns.get(ctx.ledger) ?? new Map<string, Promise<unknown>>();
  minerTurns.set(ctx.ledger, turns);
  const before = turns.get(minerKey) ?? Promise.resolve();
  const mine = before.then(fn, fn);
  const tail = mine.catch(() => undefined);
  turns.set(minerKey, tail);
  void tail.then(() => {
    if (turns.get(minerKey) === tail) turns.delete(minerKey);
  });
  return mine;
}

/**
 * Jobs whose stalled units are being audited now, per coordinator: one round per job at a time, and `true` when the
 * job changed during the round (a result held, units queued again), so that it is looked at once more after it.
 */
const auditingStalled = new WeakMap<object, Map<string, boolean>>();

/**
 * Progress without the miner: when every unit of a job left is held (none waiting, none leased), audits each held
 * unit of it, oldest first, so that a job whose miners went away, or whose tail sits in its miners' bonds, still
 * finishes: units never settle by time alone, which would let a cheat wait its bond out. Each audit that passes
 * settles its unit (and what the rule releases); one that fails forfeits its miner's pending credits, whose units are
 * queued again, and the job is no longer stalled. Verdicts are told to the miners if they are connected (ctx.tell),
 * and are in the ledger either way.
 */
export async function auditStalled(ctx: SettlementContext, jobId: string): Promise<void> {
  const running = auditingStalled.get(ctx.ledger) ?? new Map<string, boolean>();
  auditingStalled.set(ctx.ledger, running);
  if (running.has(jobId)) {
    running.set(jobId, true);
    return;
  }
  running.set(jobId, false);
  try {
    do {
      running.set(jobId, false);
      await auditStalledRound(ctx, jobId);
    } while (running.get(jobId));
  } finally {
    running.delete(jobId);
  }
}

/** Whether every unit a job has left is held: nothing waits for a miner or is leased, so only an audit moves it. */
async function stalled(ctx: SettlementContext, jobId: string): Promise<boolean> {
  const counts = await ctx.queue.unitCounts(jobId);
  return counts.waiting === 0 && counts.leased === 0 && counts.held > 0;
}

async function auditStalledRound(ctx: SettlementContext, jobId: string): Promise<void> {
  if (!(await stalled(ctx, jobId))) return;
  const state = await ctx.queue.job(jobId);
  if (!state) return;
  for (const credit of await ctx.ledger.pendingCredits({ jobId })) {
    const { minerKey } = credit;
    const unit = state.units.get(credit.unitId);
    if (!unit) continue;
    // The job finished with an earlier settlement (its job is then dropped), or a failed audit queued units again.
    const job = state.job;
    if (job === null || !(await stalled(ctx, jobId))) return;
    const outcome = await inMinersTurn(ctx, minerKey, async () => {
      // Settled or forfeited meanwhile by an audit of another of its results: nothing left to audit here.
      if (!(await ctx.ledger.pendingCredits({ minerKey })).some((c) => c.unitId === unit.id)) return undefined;
      log('audit-stalled', { job: jobId, miner: minerKey, unit: unit.id });
      return auditMiner(ctx, state.kind, job, unit, state.kind.decodeStoredResult(unit, credit.result), minerKey);
    });
    if (!outcome) continue;
    if (outcome.passed) for (const receipt of outcome.receipts) ctx.tell?.(minerKey, { type: 'receipt', receipt });
    else ctx.tell?.(minerKey, { type: 'forfeited', ...outcome.forfeited, reason: outcome.error.message });
  }
}

/** Starts auditStalled without waiting for it: a miner's answer never waits on another miner's audit. */
export function auditStalledSoon(ctx: SettlementContext, jobId: string): void {
  auditStalled(ctx, jobId).catch((err: unknown) => log('audit-error', { job: jobId, error: String(err) }));
}
