// Results sent on a link and not yet settled. A lease of one unit is settled by one verdict; a span's (a lease whose
// units the coordinator joined) by a verdict on each of its parts (a receipt, or a rejection of that part when its
// credit could not be stored), or by one rejection of the whole.

/** What the page reports of a result once it is settled. */
export interface SentResult {
  ops: bigint;
  gpuSeconds: number;
}

/** The result a verdict belongs to, and whether that verdict was its last. */
export interface Settled {
  /** The unit id the result was sent for: the lease's unit, or the span's. */
  unitId: string;
  sent: SentResult;
  /** The job's units the result holds: a span's parts, else 1. */
  units: number;
  /** True once every part has its verdict: the result may then be forgotten. */
  done: boolean;
  /** Of its units, how many were accepted and how many refused so far (a whole rejection refuses them all). */
  accepted: number;
  rejected: number;
  /** Of the refused, how many were verdicts this page failed to store (a receipt the wallet could not keep). */
  unstored: number;
  /** Why the last refused one was refused. */
  reason?: string;
}

/** A verdict as the page took it: accepted (and stored), rejected by the coordinator, or one the wallet did not store. */
export type Outcome = 'accepted' | 'rejected' | 'unstored';

interface Awaiting extends SentResult {
  units: number;
  partsLeft: Set<string>;
  accepted: number;
  rejected: number;
  unstored: number;
  reason?: string;
}

export class AwaitingVerdicts {
  private readonly results = new Map<string, Awaiting>();
  /** A span part's id -> its span's unit id. */
  private readonly spanOf = new Map<string, string>();

  get size(): number {
    return this.results.size;
  }

  add(unitId: string, sent: SentResult, parts: readonly string[] = []): void {
    this.results.set(unitId, { ...sent, units: Math.max(1, parts.length), partsLeft: new Set(parts), accepted: 0, rejected: 0, unstored: 0 });
    for (const part of parts) this.spanOf.set(part, unitId);
  }

  /**
   * A verdict named `unitId` arrived, taken as `outcome` (with why, when refused): a unit's, a span's (a rejection of
   * the whole) or one part's. Undefined when no result sent on this link awaits it (a receipt sent again, or one for an
   * audit run without this page).
   */
  settle(unitId: string, outcome: Outcome = 'accepted', reason?: string): Settled | undefined {
    const resultId = this.spanOf.get(unitId) ?? unitId;
    const result = this.results.get(resultId);
    if (!result) return undefined;
    const whole = resultId === unitId;
    if (whole) for (const part of result.partsLeft) this.spanOf.delete(part);
    else {
      result.partsLeft.delete(unitId);
      this.spanOf.delete(unitId);
    }
    const counted = whole ? result.units - result.accepted - result.rejected : 1;
    if (outcome === 'accepted') result.accepted += counted;
    else {
      result.rejected += counted;
      if (outcome === 'unstored') result.unstored += counted;
      result.reason = reason;
    }
    const done = whole || result.partsLeft.size === 0;
    if (done) this.results.delete(resultId);
    const { ops, gpuSeconds, units, accepted, rejected, unstored } = result;
    return { unitId: resultId, sent: { ops, gpuSeconds }, units, done, accepted, rejected, unstored, ...(result.reason === undefined ? {} : { reason: result.reason }) };
  }
}
