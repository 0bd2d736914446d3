// Credits a coordinator holds as pending until an audit passes: kept apart from receipts, never counted in the
// balance (they are unsigned promises, not earnings); a receipt for the unit or a forfeiture notice removes them.
import * as v from 'valibot';
import { Id, ReceiptKind } from '../protocol/messages.ts';

/** One pending credit as the wallet stores it, keyed by unit id. */
export const PendingCredit = v.object({
  unitId: Id,
  jobId: Id,
  kind: ReceiptKind,
  ops: v.bigint(),
  microCredits: v.pipe(v.bigint(), v.minValue(0n)),
  /** hex of the coordinator key of the connection that told it */
  coordinatorKey: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  receivedAtMs: v.pipe(v.number(), v.safeInteger()),
});
export type PendingCredit = v.InferOutput<typeof PendingCredit>;

export interface PendingTotal {
  units: number;
  microCredits: bigint;
}

/** What the page shows apart from the balance: the stored records that are well-formed pending credits, summed. */
export function pendingTotal(records: readonly unknown[]): PendingTotal {
  const total: PendingTotal = { units: 0, microCredits: 0n };
  for (const record of records) {
    const parsed = v.safeParse(PendingCredit, record);
    if (!parsed.success) continue;
    total.units++;
    total.microCredits += parsed.output.microCredits;
  }
  return total;
}
