// Leases of a miner whose connection dropped, held a short while for the same wallet key to come back with results.
import { log } from './log.ts';
import type { WorkQueue } from './queue.ts';

/**
 * How long a dropped session's leases wait for its wallet key. Both ends notice a dead link within 2 s
 * (heartbeat.ts) and a page tries again 1 s later (mining-loop.ts), so an honest miner is back well within this; a
 * miner that is not loses its units to others this much later than it would without the grace.
 */
export const LEASE_GRACE_MS = 5_000;

export class LeaseGrace {
  /** session id -> the wallet key it proved, and the timer that releases its leases */
  private readonly held = new Map<string, { minerKey: string; timer: ReturnType<typeof setTimeout> }>();

  constructor(
    private readonly queue: WorkQueue,
    private readonly graceMs = LEASE_GRACE_MS,
  ) {}

  /** A session ended: its leases wait for its wallet key, or go back now when it never proved one. */
  hold(sessionId: string, minerKey: string | null): void {
    if (minerKey === null || this.graceMs <= 0) return this.release(sessionId, minerKey);
    const timer = setTimeout(() => {
      this.held.delete(sessionId);
      this.release(sessionId, minerKey);
    }, this.graceMs);
    timer.unref();
    this.held.set(sessionId, { minerKey, timer });
  }

  /** The ended sessions whose leases are held for this wallet key. */
  of(minerKey: string): string[] {
    return [...this.held].filter(([, entry]) => entry.minerKey === minerKey).map(([sessionId]) => sessionId);
  }

  /** Stops the timers; the queue keeps the leases until their deadlines (or a restart) end them. */
  close(): void {
    for (const { timer } of this.held.values()) clearTimeout(timer);
    this.held.clear();
  }

  private release(sessionId: string, minerKey: string | null): void {
    this.queue.releaseSession(sessionId).then(
      (released) => log('miner-left', { session: sessionId, miner: minerKey, released: released.length }),
      (err: unknown) => log('queue-error', { event: 'release-session', session: sessionId, error: String(err) }),
    );
  }
}
