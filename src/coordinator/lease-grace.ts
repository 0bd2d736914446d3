// Leases of a miner whose connection dropped, held a short while for the same wallet key to come back with results.
import { log } from './log.ts';
import type { WorkQueue } from './queue.ts';

/**
 * How long a dropped session's leases wait for its wallet key. Both ends notice a dead link within 2 s
 * (heartbeat.ts) and a page tries again 1 s later (mining-loop.ts), so an honest miner is back well within this; a
 * miner that is not loses its units to others this much later than it would without the grace.
 */
export const LEASE_GRACE_MS = 5_000;

/**
 * Sessions whose leases went back are remembered for their key, a few per key and so many keys at most, so that a
 * result that comes back after its grace is told its lease ended instead of being blamed as someone else's.
 */
const RELEASED_PER_KEY = 8;
const RELEASED_KEYS = 10_000;

export class LeaseGrace {
  /** session id -> the wallet key it proved, and the timer that releases its leases */
  private readonly held = new Map<string, { minerKey: string; timer: ReturnType<typeof setTimeout> }>();
  /** wallet key -> its sessions whose leases were released after their grace, oldest first */
  private readonly released = new Map<string, string[]>();

  constructor(
    private readonly queue: WorkQueue,
    private readonly graceMs = LEASE_GRACE_MS,
  ) {}

  /** A session ended: its leases wait for its wallet key, or go back now when it never proved one. */
  hold(sessionId: string, minerKey: string | null): void {
    if (minerKey === null || this.graceMs <= 0) return this.release(sessionId, minerKey);
    const timer = setTimeout(() => {
      this.held.delete(sessionId);
      this.remember(minerKey, sessionId);
      this.release(sessionId, minerKey);
    }, this.graceMs);
    timer.unref();
    this.held.set(sessionId, { minerKey, timer });
  }

  /** This wallet key's ended sessions: those whose leases are held for it, then a few whose leases went back. */
  of(minerKey: string): string[] {
    const held = [...this.held].filter(([, entry]) => entry.minerKey === minerKey).map(([sessionId]) => sessionId);
    return [...held, ...(this.released.get(minerKey) ?? [])];
  }

  /** Stops the timers; the queue keeps the leases until their deadlines (or a restart) end them. */
  close(): void {
    for (const { timer } of this.held.values()) clearTimeout(timer);
    this.held.clear();
  }

  private remember(minerKey: string, sessionId: string): void {
    const sessions = this.released.get(minerKey) ?? [];
    this.released.delete(minerKey); // re-inserted last: the map's order is then the keys' last use
    this.released.set(minerKey, [...sessions, sessionId].slice(-RELEASED_PER_KEY));
    if (this.released.size > RELEASED_KEYS) this.released.delete(this.released.keys().next().value as string);
  }

  private release(sessionId: string, minerKey: string | null): void {
    this.queue.releaseSession(sessionId).then(
      (released) => log('miner-left', { session: sessionId, miner: minerKey, released: released.length }),
      (err: unknown) => log('queue-error', { event: 'release-session', session: sessionId, error: String(err) }),
    );
  }
}
