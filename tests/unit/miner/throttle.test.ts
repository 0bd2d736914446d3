// The throttle's rest before each unit: duty cycle and the cap on GPU seconds per minute.
import { describe, expect, it } from 'vitest';
import { CAP_WINDOW_MS, restMs, unthrottled, type RunRecord } from '../../../src/miner/throttle.ts';

const run = (startedAtMs: number, gpuSeconds: number, wallMs = gpuSeconds * 1000): RunRecord => ({ startedAtMs, finishedAtMs: startedAtMs + wallMs, gpuSeconds });

describe('restMs', () => {
  it('never rests at full duty under the cap', () => {
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 60 }, [run(0, 1)], 1000)).toBe(0);
  });

  it('never rests unthrottled, even when overlapping units fill the whole minute', () => {
    // 40 units of 2 s back to back, each reporting 1.98 GPU seconds: 59.4 s in the last minute, plus the next unit.
    const runs = Array.from({ length: 40 }, (_, i) => run(i * 2000, 1.98, 2000));
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 60 }, runs, 80_000)).toBe(0);
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 59 }, runs, 80_000)).toBeGreaterThan(0);
  });

  it('rests so that GPU time is the duty share of each cycle', () => {
    // 1 s of GPU at 25%: the next unit starts 4 s after this one started, 3 s after it ended.
    expect(restMs({ duty: 0.25, gpuSecondsPerMinute: 60 }, [run(0, 1)], 1000)).toBe(3000);
    expect(restMs({ duty: 0.25, gpuSecondsPerMinute: 60 }, [run(0, 1)], 2500)).toBe(1500);
  });

  it('counts time spent on upload and read-back as rest already taken', () => {
    expect(restMs({ duty: 0.5, gpuSecondsPerMinute: 60 }, [run(0, 1, 1800)], 1800)).toBe(200);
  });

  it('holds the next unit until the last minute has room for it under the cap', () => {
    const runs = [run(0, 4), run(4000, 4), run(8000, 4)];
    // 12 GPU seconds in the window, cap 14, next unit expected to take 4: wait until the first run leaves the window.
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 14 }, runs, 12_000)).toBe(4000 + CAP_WINDOW_MS - 12_000);
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 16 }, runs, 12_000)).toBe(0);
  });

  it('lets a unit longer than the cap run alone in its minute', () => {
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 1 }, [run(0, 5)], 5000)).toBe(CAP_WINDOW_MS);
    expect(restMs({ duty: 1, gpuSecondsPerMinute: 1 }, [run(0, 5)], 5000 + CAP_WINDOW_MS)).toBe(0);
  });
});

describe('unthrottled', () => {
  it('lets units overlap only at full duty and the full cap', () => {
    expect(unthrottled({ duty: 1, gpuSecondsPerMinute: 60 })).toBe(true);
    expect(unthrottled({ duty: 0.9, gpuSecondsPerMinute: 60 })).toBe(false);
    expect(unthrottled({ duty: 1, gpuSecondsPerMinute: 59 })).toBe(false);
  });
});
