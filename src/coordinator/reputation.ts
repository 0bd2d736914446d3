// Reputation policy, pure: verified work raises a miner's score a little, a rejected result lowers it a lot, and a low score bans.
import type { Reputation } from './ledger/ledger.ts';

/** Each verified unit adds this much, up to MAX_SCORE, so a long record cannot buy unlimited cheating. */
export const ACCEPT_REWARD = 1;
export const MAX_SCORE = 50;
/** Each rejected result (wrong, non-finite, misshapen, replayed, implausible, for a lease never held) costs this. */
export const REJECT_PENALTY = 10;
/** A score at or below this bans the wallet key: a fresh key is banned on its third rejection without good work between. */
export const BAN_AT_SCORE = -30;
/** A ban lasts a day; the score is then set back to BAN_AT_SCORE + REJECT_PENALTY, so one more offence bans again. */
export const BAN_MS = 24 * 60 * 60_000;

export type Outcome = 'accepted' | 'rejected';

export function isBanned(r: Reputation, nowMs: number): boolean {
  return r.bannedUntilMs > nowMs;
}

/** The record after one verdict; a ban starts when the score falls to BAN_AT_SCORE. */
export function nextReputation(r: Reputation, outcome: Outcome, nowMs: number): Reputation {
  const base = r.bannedUntilMs !== 0 && !isBanned(r, nowMs) ? { ...r, score: BAN_AT_SCORE + REJECT_PENALTY, bannedUntilMs: 0 } : r;
  if (outcome === 'accepted') {
    return { ...base, accepted: base.accepted + 1, score: Math.min(MAX_SCORE, base.score + ACCEPT_REWARD) };
  }
  const score = base.score - REJECT_PENALTY;
  const bannedUntilMs = score <= BAN_AT_SCORE ? Math.max(base.bannedUntilMs, nowMs + BAN_MS) : base.bannedUntilMs;
  return { ...base, rejected: base.rejected + 1, score, bannedUntilMs };
}
