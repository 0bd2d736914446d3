// Cumulative joules from raw readings, pure: a hardware counter's deltas with its wrap-around, or sampled watts
// integrated by the trapezoid rule, each with its uncertainty.
import type { ProbeMethod } from '../protocol/energy.ts';

/** A raw reading of one source: a counter in joules (wrapping at maxJoules), or an instantaneous power in watts. */
export type RawReading =
  | { kind: 'counter'; joules: number; maxJoules: number | null }
  | { kind: 'power'; watts: number };

/**
 * Relative uncertainty of each method's joules (one standard deviation). RAPL is a modelled, not metered, figure
 * (Intel quotes it as close to a meter; studies find a few percent); NVIDIA documents power.draw as accurate to
 * +/-5%; hwmon varies by chip, so 10%.
 */
export const RELATIVE_UNCERTAINTY: Record<ProbeMethod, number> = {
  'nvml-energy': 0.05,
  rapl: 0.05,
  'hwmon-energy': 0.1,
  'nvml-power': 0.05,
  'hwmon-power': 0.1,
};

/** Joules a counter advanced from `previous` to `current`, allowing one wrap at `maxJoules` (null: never wraps). */
export function counterDelta(previous: number, current: number, maxJoules: number | null): number {
  if (current >= previous) return current - previous;
  if (maxJoules === null || maxJoules <= 0) throw new Error(`counter went back from ${previous} to ${current} J and has no wrap range`);
  return maxJoules - previous + current;
}

/** Joules between two power samples, by the trapezoid rule, and the error bound of that rule between them. */
export function trapezoid(wattsBefore: number, wattsAfter: number, seconds: number): { joules: number; samplingJoules: number } {
  return { joules: ((wattsBefore + wattsAfter) / 2) * seconds, samplingJoules: (Math.abs(wattsAfter - wattsBefore) / 2) * seconds };
}

/** One source's running totals since the first reading. */
export class EnergyAccumulator {
  joules = 0;
  /** Uncertainty from sampling alone (power methods); the method's relative uncertainty is added in `uncertainty`. */
  private samplingJoules = 0;
  private last: { atMs: number; reading: RawReading } | undefined;
  /** Whether the counter did not move at the last sample. */
  stale = false;

  constructor(readonly method: ProbeMethod) {}

  add(atMs: number, reading: RawReading): void {
    const last = this.last;
    this.last = { atMs, reading };
    if (!last) return;
    const seconds = Math.max(0, atMs - last.atMs) / 1000;
    if (reading.kind === 'counter' && last.reading.kind === 'counter') {
      const delta = counterDelta(last.reading.joules, reading.joules, reading.maxJoules);
      this.stale = delta === 0;
      this.joules += delta;
    } else if (reading.kind === 'power' && last.reading.kind === 'power') {
      const step = trapezoid(last.reading.watts, reading.watts, seconds);
      this.stale = false;
      this.joules += step.joules;
      this.samplingJoules += step.samplingJoules;
    } else {
      throw new Error(`a ${this.method} source changed from ${last.reading.kind} to ${reading.kind} readings`);
    }
  }

  /** One standard deviation of `joules`: the method's relative error, and the sampling error, added in quadrature. */
  get uncertaintyJoules(): number {
    return Math.hypot(this.joules * RELATIVE_UNCERTAINTY[this.method], this.samplingJoules);
  }
}
