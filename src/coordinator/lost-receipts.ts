// Receipts lost with a link: a result sent again for a unit already credited to the same wallet key is answered with
// that credit's receipt, signed again from the ledger row (by whichever coordinator of a fleet answers, with its own
// key), and credited nothing more. The page cannot know whether its result arrived before the link or the coordinator
// died; the ledger can.
import type { Receipt } from '../protocol/messages.ts';
import { receiptFor } from './audits.ts';
import type { Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { SigningKey } from './signing-key.ts';

/**
 * The receipt of this unit's credit when it was credited to minerKey; undefined when the unit is not credited, is
 * another key's (whose claim stays an offence for the caller to judge), or was credited before receipt kinds were
 * kept. The receipt carries the credit's own fields and time, so that it equals the one that was lost.
 */
export async function lostReceipt(ctx: { ledger: Ledger; signingKey: SigningKey }, sessionId: string, minerKey: string, unitId: string): Promise<Receipt | undefined> {
  return (await lostReceipts(ctx, sessionId, minerKey, [unitId]))[0];
}

/**
 * The receipts of these units credited to minerKey, in their order, from one read of the ledger: what a span's result
 * sent again gets for its parts, and a miner asking after its pending credits (pending-check) for those settled.
 */
export async function lostReceipts(ctx: { ledger: Ledger; signingKey: SigningKey }, sessionId: string, minerKey: string, unitIds: readonly string[]): Promise<Receipt[]> {
  const credits = new Map((await ctx.ledger.creditsOf(minerKey, unitIds)).map((credit) => [credit.unitId, credit]));
  const receipts: Receipt[] = [];
  for (const unitId of new Set(unitIds)) {
    const credit = credits.get(unitId);
    if (credit?.receiptKind === undefined) continue;
    receipts.push(await receiptFor(ctx, credit, credit.receiptKind, credit.createdAtMs));
  }
  if (receipts.length > 0) log('receipt-again', { session: sessionId, miner: minerKey, units: receipts.length, unit: receipts[0].unitId });
  return receipts;
}
