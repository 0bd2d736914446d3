// The GPU throttle's arithmetic: how long to rest before the next unit, for a duty cycle and a GPU-seconds cap.
import type { Throttle } from './worker-messages.ts';

export const CAP_WINDOW_MS = 60_000;

export interface RunRecord {
  startedAtMs: number;
  finishedAtMs: number;
  gpuSeconds: number;
}

/**
 * Milliseconds to wait at `nowMs` before starting a unit expected to take about as long as the last one.
 * Duty: the next unit starts no sooner than the last start plus its GPU time divided by the duty, so that over
 * each cycle GPU time / wall time is at most the duty. Cap: the GPU seconds finished in the last minute plus the
 * expected unit stay within the cap (a single unit longer than the cap still runs, alone in its minute).
 */
export function restMs(throttle: Throttle, runs: readonly RunRecord[], nowMs: number): number {
  const last = runs.at(-1);
  // Unthrottled, the cap is the whole minute: units that overlap may sum to it, and no rest is owed.
  if (!last || unthrottled(throttle)) return 0;
  let wait = Math.max(0, last.startedAtMs + (last.gpuSeconds * 1000) / throttle.duty - nowMs);
  const recent = runs.filter((r) => r.finishedAtMs > nowMs - CAP_WINDOW_MS);
  let used = recent.reduce((s, r) => s + r.gpuSeconds, 0);
  if (used + last.gpuSeconds > throttle.gpuSecondsPerMinute) {
    for (const r of recent) {
      used -= r.gpuSeconds;
      if (used + last.gpuSeconds <= throttle.gpuSecondsPerMinute || used <= 0) {
        wait = Math.max(wait, r.finishedAtMs + CAP_WINDOW_MS - nowMs);
        break;
      }
    }
  }
  return Math.ceil(wait);
}

/** True when the throttle asks for no rest at all: the GPU may run units back to back. */
export function unthrottled(throttle: Throttle): boolean {
  return throttle.duty >= 1 && throttle.gpuSecondsPerMinute >= CAP_WINDOW_MS / 1000;
}

/** Drops runs that can no longer affect restMs. */
export function pruneRuns(runs: RunRecord[], nowMs: number): void {
  while (runs.length > 1 && (runs[0].finishedAtMs <= nowMs - CAP_WINDOW_MS)) runs.shift();
}
