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

/** The stored records that are well-formed pending credits, oldest first; the rest are left out. */
export function pendingCredits(records: readonly unknown[]): PendingCredit[] {
  const credits = records.flatMap((record) => {
    const parsed = v.safeParse(PendingCredit, record);
    return parsed.success ? [parsed.output] : [];
  });
  return credits.sort((a, b) => a.receivedAtMs - b.receivedAtMs);
}

/** What the page shows apart from the balance: the stored records that are well-formed pending credits, summed. */
export function pendingTotal(records: readonly unknown[]): PendingTotal {
  const credits = pendingCredits(records);
  return { units: credits.length, microCredits: credits.reduce((sum, credit) => sum + credit.microCredits, 0n) };
}
