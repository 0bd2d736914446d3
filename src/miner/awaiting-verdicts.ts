// Results sent on a link and not yet settled. A lease of one unit is settled by one verdict; a span's (a lease whose
// units the coordinator joined) by a receipt for each of its parts, or by one rejection of the whole.

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
}

export class AwaitingVerdicts {
  private readonly results = new Map<string, SentResult & { units: number; partsLeft: Set<string> }>();
  /** A span part's id -> its span's unit id. */
  private readonly spanOf = new Map<string, string>();

  get size(): number {
    return this.results.size;
  }

  add(unitId: string, sent: SentResult, parts: readonly string[] = []): void {
    this.results.set(unitId, { ...sent, units: Math.max(1, parts.length), partsLeft: new Set(parts) });
    for (const part of parts) this.spanOf.set(part, unitId);
  }

  /**
   * A verdict named `unitId` arrived: a unit's, a span's (a rejection of the whole) or one part's receipt. Undefined
   * when no result sent on this link awaits it (a receipt sent again, or one for an audit run without this page).
   */
  settle(unitId: string): Settled | undefined {
    const resultId = this.spanOf.get(unitId) ?? unitId;
    const result = this.results.get(resultId);
    if (!result) return undefined;
    const { partsLeft, units, ...sent } = result;
    if (resultId === unitId) for (const part of partsLeft) this.spanOf.delete(part);
    else {
      partsLeft.delete(unitId);
      this.spanOf.delete(unitId);
    }
    const done = resultId === unitId || partsLeft.size === 0;
    if (done) this.results.delete(resultId);
    return { unitId: resultId, sent, units, done };
  }
}
