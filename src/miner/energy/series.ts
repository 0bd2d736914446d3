// A cumulative energy curve sampled over time, pure: the joules between two instants by linear interpolation
// between the samples that bracket them.

export interface EnergySample {
  atMs: number;
  /** Cumulative joules at atMs, from whatever origin the source counts from. */
  joules: number;
  /** Uncertainty of the cumulative figure (one standard deviation). */
  uncertaintyJoules: number;
}

/** Samples older than this are dropped: a unit lasts seconds, not minutes. */
const KEEP_MS = 120_000;

export class CumulativeSeries {
  private samples: EnergySample[] = [];

  add(sample: EnergySample): void {
    const last = this.samples.at(-1);
    if (last && (sample.atMs < last.atMs || sample.joules < last.joules)) {
      // A source that went back restarted (a new probe, a re-pairing): begin a new curve.
      this.samples = [];
    }
    this.samples.push(sample);
    const horizon = sample.atMs - KEEP_MS;
    while (this.samples.length > 2 && this.samples[1].atMs < horizon) this.samples.shift();
  }

  clear(): void {
    this.samples = [];
  }

  get latest(): EnergySample | undefined {
    return this.samples.at(-1);
  }

  /** The cumulative joules at `atMs`, interpolated; undefined outside the samples. */
  at(atMs: number): number | undefined {
    const s = this.samples;
    if (s.length === 0 || atMs < s[0].atMs || atMs > s[s.length - 1].atMs) return undefined;
    let i = 1;
    while (i < s.length && s[i].atMs < atMs) i++;
    if (i >= s.length) return s[s.length - 1].joules;
    const a = s[i - 1];
    const b = s[i];
    const span = b.atMs - a.atMs;
    return span === 0 ? b.joules : a.joules + ((b.joules - a.joules) * (atMs - a.atMs)) / span;
  }

  /**
   * Joules from `fromMs` to `toMs`, with an uncertainty: the source's relative uncertainty over the same stretch,
   * plus the interpolation error (at most the energy of the sample intervals the two ends fall in). Undefined when
   * the samples do not cover the interval.
   */
  between(fromMs: number, toMs: number): { joules: number; uncertaintyJoules: number } | undefined {
    const start = this.at(fromMs);
    const end = this.at(toMs);
    if (start === undefined || end === undefined || toMs < fromMs) return undefined;
    const joules = end - start;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const relative = last.joules > first.joules ? (last.uncertaintyJoules - first.uncertaintyJoules) / (last.joules - first.joules) : 0;
    const edge = (atMs: number) => {
      const i = this.samples.findIndex((s) => s.atMs >= atMs);
      if (i <= 0) return 0;
      const a = this.samples[i - 1];
      const b = this.samples[i];
      return b.atMs === atMs ? 0 : (b.joules - a.joules) / 2;
    };
    return { joules, uncertaintyJoules: Math.hypot(Math.max(0, relative) * joules, edge(fromMs), edge(toMs)) };
  }
}
