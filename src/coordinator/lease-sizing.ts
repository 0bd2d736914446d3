// How many leases a miner holds at once: as many as keep its GPU fed for about a second ahead, from the speed the
// coordinator measured itself on the miner's verified results, and never more than its record allows. Pure.
import type { Reputation } from './ledger/ledger.ts';

/** Work kept in a miner's hands beyond the unit computing: enough to hide the link's round trip and the fetches. */
export const SECONDS_AHEAD = 1;
/** The most leases any key holds at once: bounds what one fast key can take from a job while its leases run. */
export const MAX_LEASES_PER_MINER = 16;
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

/**
 * How many leases a wallet key may hold at once, over all its connections. A key with no verified work gets one, and
 * one with a short record two (keys are free: a new key earns room by verified work, it cannot hoard a job). An
 * established key gets what its measured speed needs to stay busy SECONDS_AHEAD beyond the unit it is computing, for
 * units of `unitOps`, up to MAX_LEASES_PER_MINER: a fast GPU many, a slow one two.
 */
export function leaseAllowance(record: Reputation, opsPerSecond: number | undefined, unitOps: bigint): number {
  if (record.accepted === 0) return 1;
  if (record.accepted < ESTABLISHED_AFTER_UNITS || opsPerSecond === undefined || unitOps <= 0n) return LEASES_UNMEASURED;
  const ahead = Math.ceil((opsPerSecond * SECONDS_AHEAD) / Number(unitOps));
  return Math.min(MAX_LEASES_PER_MINER, Math.max(LEASES_UNMEASURED, 1 + ahead));
}
