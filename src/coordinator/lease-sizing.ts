// How big a miner's leases are and how many it holds at once: each about a second of its work, and enough of them to
// keep its GPU fed a second ahead, from the speed the coordinator measured itself on the miner's verified results,
// and never more than its record allows. Pure.
import type { Reputation } from './ledger/ledger.ts';

/** Work kept in a miner's hands beyond the lease computing: enough to hide the link's round trip and the fetches. */
export const SECONDS_AHEAD = 1;
/**
 * Work in one lease, where the kind can join units (WorkKind.span): a fast GPU gets its work in pieces that take it
 * about this long, so that the coordinator's costs per lease (a message, a verification, a fetch) stay small against
 * it; a slow one gets single units.
 */
export const SECONDS_PER_LEASE = 1;
/** The most units one lease joins. */
export const MAX_UNITS_PER_LEASE = 16;
/** The most leases any key holds at once. */
export const MAX_LEASES_PER_MINER = 16;
/** The most units any key holds at once, over all its leases: bounds what one fast key can take from a job. */
export const MAX_UNITS_PER_MINER = 64;
/** Leases a key holds before any speed is measured, once it has a record: one computing, one uploading behind it. */
export const LEASES_UNMEASURED = 2;
/** A key needs this many verified units before its measured speed earns it more than LEASES_UNMEASURED. */
export const ESTABLISHED_AFTER_UNITS = 20;
/** Speed is measured over this many of the newest verified results. */
const WINDOW_RESULTS = 8;

/**
 * A session's speed as the coordinator sees it, not as the miner claims it: ops of verified results over the time
 * the miner had them. A result's time runs from its lease being sent, or from the result before it when that came
 * later (the miner works through its leases in turn), to its arrival; so with several leases in flight the time
 * counted is the miner's, not the queue's. Transfers count too: the speed that matters is what reaches the ledger.
 */
export class MeasuredSpeed {
  private readonly samples: { ops: number; ms: number }[] = [];
  private lastResultAtMs = 0;

  record(ops: bigint, leaseSentAtMs: number, nowMs: number): void {
    const ms = Math.max(1, nowMs - Math.max(leaseSentAtMs, this.lastResultAtMs));
    this.lastResultAtMs = nowMs;
    this.samples.push({ ops: Number(ops), ms });
    if (this.samples.length > WINDOW_RESULTS) this.samples.shift();
  }

  /** Ops per second over the window; undefined before a verified result. */
  get opsPerSecond(): number | undefined {
    if (this.samples.length === 0) return undefined;
    const ops = this.samples.reduce((sum, s) => sum + s.ops, 0);
    const ms = this.samples.reduce((sum, s) => sum + s.ms, 0);
    return (ops * 1000) / ms;
  }
}

/** A wallet key's leases now: how many units each joins, and how many it may hold at once over all its connections. */
export interface LeaseSize {
  units: number;
  leases: number;
}

/**
 * A key with no verified work gets one lease of one unit, and one with a short record two (keys are free: a new key
 * earns room by verified work, it cannot hoard a job). An established key gets leases of about SECONDS_PER_LEASE of
 * its measured speed, for units of `unitOps`, and as many as keep it busy SECONDS_AHEAD beyond the one computing, up
 * to the caps: a fast GPU a few large leases, a slow one two single units.
 */
export function leaseSize(record: Reputation, opsPerSecond: number | undefined, unitOps: bigint): LeaseSize {
  if (record.accepted === 0) return { units: 1, leases: 1 };
  if (record.accepted < ESTABLISHED_AFTER_UNITS || opsPerSecond === undefined || unitOps <= 0n) return { units: 1, leases: LEASES_UNMEASURED };
  const unitsPerSecond = opsPerSecond / Number(unitOps);
  const units = Math.min(MAX_UNITS_PER_LEASE, Math.max(1, Math.floor(unitsPerSecond * SECONDS_PER_LEASE)));
  const ahead = Math.ceil((unitsPerSecond * SECONDS_AHEAD) / units);
  const leases = Math.min(MAX_LEASES_PER_MINER, Math.floor(MAX_UNITS_PER_MINER / units), 1 + ahead);
  return { units, leases: Math.max(LEASES_UNMEASURED, leases) };
}
