// Earnings history: receipts grouped by the local calendar day they were issued, newest day first.
import type { Receipt } from '../protocol/messages.ts';

export interface DayEarnings {
  /** YYYY-MM-DD in the given time zone offset */
  day: string;
  receipts: number;
  microCredits: bigint;
  ops: bigint;
  gpuSeconds: number;
}

/** `offsetMinutes` is minutes to add to UTC for local time (the negation of Date#getTimezoneOffset). */
export function earningsByDay(receipts: readonly Receipt[], offsetMinutes = -new Date().getTimezoneOffset()): DayEarnings[] {
  const days = new Map<string, DayEarnings>();
  for (const r of receipts) {
    const day = new Date(Number(r.issuedAtMs) + offsetMinutes * 60_000).toISOString().slice(0, 10);
    const entry = days.get(day) ?? { day, receipts: 0, microCredits: 0n, ops: 0n, gpuSeconds: 0 };
    entry.receipts++;
    entry.microCredits += r.microCredits;
    entry.ops += r.ops;
    entry.gpuSeconds += r.gpuSeconds;
    days.set(day, entry);
  }
  return [...days.values()].sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0));
}
