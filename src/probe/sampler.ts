// Samples every source the probe found at a fixed period and keeps each one's cumulative joules; answers a
// reading in which the best method's sources are summed (methods are never added together).
import { PROBE_METHODS, type ProbeMethod, type ProbeReading } from '../protocol/energy.ts';
import { EnergyAccumulator } from './accumulator.ts';
import type { SysfsSource } from './sysfs.ts';

/** The best method present among these, in PROBE_METHODS order; null for none. */
export function bestMethod(methods: Iterable<ProbeMethod>): ProbeMethod | null {
  const present = new Set(methods);
  return PROBE_METHODS.find((m) => present.has(m)) ?? null;
}

export class Sampler {
  private readonly accumulators: Map<string, { source: SysfsSource; acc: EnergyAccumulator; failed: string | null }>;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(sources: SysfsSource[], private readonly clock: () => number = Date.now) {
    this.accumulators = new Map(sources.map((source) => [source.id, { source, acc: new EnergyAccumulator(source.method), failed: null }]));
  }

  get methods(): ProbeMethod[] {
    return [...new Set([...this.accumulators.values()].map((a) => a.source.method))];
  }

  /** Reads every source once, now; a source that fails is left out of readings until it reads again. */
  sample(): Promise<void> {
    this.sampling ??= (async () => {
      const atMs = this.clock();
      await Promise.all([...this.accumulators.values()].map(async (entry) => {
        try {
          entry.acc.add(atMs, await entry.source.read());
          entry.failed = null;
        } catch (err) {
          entry.failed = (err as Error).message;
        }
      }));
    })().finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  start(periodMs: number): void {
    this.timer ??= setInterval(() => void this.sample(), periodMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Problems of sources that failed at their last read, for the log. */
  problems(): string[] {
    return [...this.accumulators.values()].filter((e) => e.failed).map((e) => `${e.source.label}: ${e.failed}`);
  }

  /** Cumulative joules since the first sample, the best method's sources summed, their uncertainties in quadrature. */
  reading(): ProbeReading {
    const working = [...this.accumulators.values()].filter((e) => e.failed === null);
    const sources = working.map(({ source, acc }) => ({
      method: source.method, label: source.label, joules: acc.joules, uncertaintyJoules: acc.uncertaintyJoules, stale: acc.stale,
    }));
    const method = bestMethod(sources.map((s) => s.method));
    const chosen = sources.filter((s) => s.method === method);
    return {
      probe: 'ergon-probe',
      atMs: this.clock(),
      method,
      joules: chosen.reduce((sum, s) => sum + s.joules, 0),
      uncertaintyJoules: Math.hypot(...chosen.map((s) => s.uncertaintyJoules)),
      sources,
    };
  }
}
