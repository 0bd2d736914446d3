import { describe, expect, it } from 'vitest';
import { HEARTBEAT_DEAD_AFTER_MAX_MS, HEARTBEAT_DEAD_AFTER_MS, HEARTBEAT_MS, SilenceClock } from '../../../src/protocol/heartbeat.ts';

/** Ticks on time from `startMs` until the clock reports the peer dead; answers when. */
function deadAtMs(clock: SilenceClock, startMs: number): number {
  for (let t = startMs + HEARTBEAT_MS; t < startMs + 60_000; t += HEARTBEAT_MS) {
    if (clock.tick(t) > HEARTBEAT_DEAD_AFTER_MS) return t;
  }
  throw new Error('never declared dead');
}

describe('heartbeat silence', () => {
  it('declares a peer that stopped sending dead within 2 s of its last frame, and not before 1.5 s', () => {
    const clock = new SilenceClock(0);
    for (let t = HEARTBEAT_MS; t <= 10_000; t += HEARTBEAT_MS) {
      expect(clock.tick(t)).toBeLessThanOrEqual(HEARTBEAT_MS);
      clock.heard();
    }
    // The last frame came just after the tick at 10 s (the worst case) or just before the next.
    const dead = deadAtMs(clock, 10_000);
    expect(dead - 10_000).toBeLessThanOrEqual(2_000);
    expect(dead - (10_000 + HEARTBEAT_MS)).toBeGreaterThanOrEqual(HEARTBEAT_DEAD_AFTER_MS);
  });

  it('keeps a peer that answers every heartbeat alive however long', () => {
    const clock = new SilenceClock(0);
    for (let t = HEARTBEAT_MS; t <= 3_600_000; t += HEARTBEAT_MS) {
      clock.heard();
      expect(clock.tick(t)).toBeLessThanOrEqual(HEARTBEAT_DEAD_AFTER_MS);
    }
  });

  it('does not blame the peer for our own stall: a tick 30 s late counts as two heartbeats', () => {
    const clock = new SilenceClock(0);
    clock.tick(HEARTBEAT_MS);
    clock.heard();
    // Our thread was busy for 30 s; the peer's frames wait in our queue behind this tick.
    expect(clock.tick(30_000)).toBe(2 * HEARTBEAT_MS);
    clock.heard();
    expect(clock.tick(30_000 + HEARTBEAT_MS)).toBe(HEARTBEAT_MS);
  });

  it('still declares a silent peer dead when every tick of ours is late (a throttled background tab)', () => {
    const clock = new SilenceClock(0, HEARTBEAT_MS);
    // Timers throttled to one per second, then per minute: silence still adds up in heartbeat-sized steps.
    expect(clock.tick(1_000)).toBe(1_000);
    expect(clock.tick(61_000)).toBeGreaterThan(HEARTBEAT_DEAD_AFTER_MS);
  });

  it('gives a link that has shown long gaps while alive more time, forgets that within minutes, and never more than 10 s', () => {
    const clock = new SilenceClock(0);
    let t = 0;
    const tickFor = (ms: number) => {
      for (const end = t + ms; t < end; ) clock.tick((t += HEARTBEAT_MS));
    };
    // An overloaded machine: 1.5 s with no frame, then frames again. Judged dead once...
    tickFor(1_500);
    expect(clock.dead).toBe(false);
    clock.heard();
    // ...the same gap again is tolerated now, while a peer that stays silent is still dropped.
    expect(clock.deadAfterMs()).toBe(3_000);
    tickFor(2_000);
    expect(clock.dead).toBe(false);
    clock.heard();
    expect(clock.deadAfterMs()).toBe(4_000);
    tickFor(4_500);
    expect(clock.dead).toBe(true);
    clock.heard();
    // Minutes of a steady link bring it back to the 1.5 s bound.
    for (let i = 0; i < 1_200; i++) {
      tickFor(HEARTBEAT_MS);
      clock.heard();
    }
    expect(clock.deadAfterMs()).toBe(HEARTBEAT_DEAD_AFTER_MS);
    // However long the gaps seen, 10 s of silence is death.
    tickFor(30_000);
    clock.heard();
    expect(clock.deadAfterMs()).toBe(HEARTBEAT_DEAD_AFTER_MAX_MS);
  });
});
