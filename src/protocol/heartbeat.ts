// Heartbeat timing shared by both ends: how often each side pings, and a peer's silence counted only in time we
// were able to listen, so that a stalled event loop (a busy test process, a throttled background tab) does not
// declare a live peer dead.

/** Each side pings this often. */
export const HEARTBEAT_MS = 500;
/**
 * A peer silent for longer than this, in listening time, is dead. Judged at each heartbeat, so a dead peer is
 * noticed within HEARTBEAT_DEAD_AFTER_MS + HEARTBEAT_MS = 2 s; three pings in a row lost before a verdict.
 */
export const HEARTBEAT_DEAD_AFTER_MS = 1_500;

/**
 * How long a peer has been silent while we were listening. A heartbeat tick that comes late (our own thread was
 * busy, or the browser throttled our timers) counts for at most two heartbeats: frames that arrived meanwhile wait
 * in our own queue behind the timer, so the gap says nothing about the peer.
 */
export class SilenceClock {
  private silentMs = 0;
  private lastTickAtMs: number;

  constructor(
    nowMs: number,
    private readonly everyMs = HEARTBEAT_MS,
  ) {
    this.lastTickAtMs = nowMs;
  }

  /** Any frame from the peer. */
  heard(): void {
    this.silentMs = 0;
  }

  /** Called at each heartbeat; answers the peer's silence so far, in listening time. */
  tick(nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - this.lastTickAtMs);
    this.lastTickAtMs = nowMs;
    this.silentMs += Math.min(elapsedMs, 2 * this.everyMs);
    return this.silentMs;
  }
}
