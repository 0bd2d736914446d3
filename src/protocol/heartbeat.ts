// Heartbeat timing shared by both ends: how often each side pings, and a peer's silence counted only in time we
// were able to listen, so that a stalled event loop (a busy test process, a throttled background tab) does not
// declare a live peer dead.

/** Each side pings this often. */
export const HEARTBEAT_MS = 500;
/**
 * A peer silent for longer than this, in listening time, is dead. Judged at each heartbeat, so a dead peer is
 * noticed within HEARTBEAT_DEAD_AFTER_MS + HEARTBEAT_MS = 2 s; three pings in a row lost before a verdict.
 * A link that has itself shown longer gaps while alive gets more (see SilenceClock.deadAfterMs).
 */
export const HEARTBEAT_DEAD_AFTER_MS = 1_500;
/** However jittery a link has been, a peer silent this long is dead. */
export const HEARTBEAT_DEAD_AFTER_MAX_MS = 10_000;
/** How fast a long gap is forgotten: the remembered gap halves every this long. */
const GAP_HALF_LIFE_MS = 60_000;

/**
 * How long a peer has been silent while we were listening. A heartbeat tick that comes late (our own thread was
 * busy, or the browser throttled our timers) counts for at most two heartbeats: frames that arrived meanwhile wait
 * in our own queue behind the timer, so the gap says nothing about the peer.
 */
export class SilenceClock {
  private silentMs = 0;
  private lastTickAtMs: number;
  /** The longest silence this link has shown that a frame then ended, decaying with GAP_HALF_LIFE_MS. */
  private recentGapMs = 0;

  constructor(
    nowMs: number,
    private readonly everyMs = HEARTBEAT_MS,
  ) {
    this.lastTickAtMs = nowMs;
  }

  /** Any frame from the peer. */
  heard(): void {
    this.recentGapMs = Math.max(this.recentGapMs, this.silentMs);
    this.silentMs = 0;
  }

  /**
   * How much silence means dead on this link: HEARTBEAT_DEAD_AFTER_MS on a steady one, else twice the longest gap
   * it has recently shown while alive (an overloaded machine's network threads, measured at 1.7 s with load 12 on
   * 2 cores), up to HEARTBEAT_DEAD_AFTER_MAX_MS: a failure detector that learns the link's jitter, as phi-accrual
   * detectors do, rather than one fixed bound that is either slow or wrong.
   */
  deadAfterMs(): number {
    return Math.min(HEARTBEAT_DEAD_AFTER_MAX_MS, Math.max(HEARTBEAT_DEAD_AFTER_MS, 2 * this.recentGapMs));
  }

  /** Whether the peer's silence, as of the last tick, means it is gone. */
  get dead(): boolean {
    return this.silentMs > this.deadAfterMs();
  }

  /** Called at each heartbeat; answers the peer's silence so far, in listening time. */
  tick(nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - this.lastTickAtMs);
    this.lastTickAtMs = nowMs;
    this.recentGapMs *= 0.5 ** (elapsedMs / GAP_HALF_LIFE_MS);
    this.silentMs += Math.min(elapsedMs, 2 * this.everyMs);
    return this.silentMs;
  }
}
