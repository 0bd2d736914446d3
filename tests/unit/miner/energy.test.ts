import { describe, expect, it } from 'vitest';
import { boardPowerWatts } from '../../../src/miner/energy/board-power.ts';
import { CumulativeSeries } from '../../../src/miner/energy/series.ts';
import { creditsPerKwh, figuresByMethod } from '../../../src/app/energy-figures.ts';

describe('cumulative energy series', () => {
  it('gives the joules between two instants by interpolating between samples, as worked out by hand', () => {
    const s = new CumulativeSeries();
    s.add({ atMs: 1_000, joules: 100, uncertaintyJoules: 5 });
    s.add({ atMs: 1_250, joules: 110, uncertaintyJoules: 5.5 });
    s.add({ atMs: 1_500, joules: 130, uncertaintyJoules: 6.5 });
    // 1100 ms: 100 + 10 * 100/250 = 104; 1400 ms: 110 + 20 * 150/250 = 122; so 18 J.
    const r = s.between(1_100, 1_400);
    expect(r?.joules).toBeCloseTo(18, 9);
    // 5% of 18 J, and half of each end's sample interval energy (10 J / 2, 20 J / 2), in quadrature.
    expect(r?.uncertaintyJoules).toBeCloseTo(Math.hypot(0.05 * 18, 5, 10), 9);
    expect(s.between(900, 1_400)).toBeUndefined();
    expect(s.between(1_100, 1_600)).toBeUndefined();
  });

  it('starts a new curve when the source restarts from a lower count', () => {
    const s = new CumulativeSeries();
    s.add({ atMs: 0, joules: 50, uncertaintyJoules: 0 });
    s.add({ atMs: 100, joules: 2, uncertaintyJoules: 0 });
    s.add({ atMs: 200, joules: 4, uncertaintyJoules: 0 });
    expect(s.between(100, 200)?.joules).toBe(2);
    expect(s.between(0, 200)).toBeUndefined();
  });
});

describe('energy figures', () => {
  it('never adds methods together, best method first, and gives credits per kWh from receipts', () => {
    const figures = figuresByMethod([
      { ops: 4_000_000_000n, energy: { seconds: 1, joules: 2, method: 'estimate', uncertaintyJoules: 1 } },
      { ops: 3_000_000_000n, energy: { seconds: 1, joules: 3, method: 'rapl', uncertaintyJoules: 0.3 } },
      { ops: 1_000_000_000n, energy: { seconds: 1, joules: 1, method: 'rapl', uncertaintyJoules: 0.4 } },
      { ops: 1_000_000_000n },
    ]);
    expect(figures.map((f) => [f.method, f.units, f.gflopsPerJoule, f.estimate])).toEqual([['rapl', 2, 1, false], ['estimate', 1, 2, true]]);
    expect(figures[0].relativeUncertainty).toBeCloseTo(0.5 / 4, 9);
    // 2 credits for 7200 J = 2 Wh: 1000 credits per kWh.
    expect(creditsPerKwh([{ microCredits: 1_500_000n, joules: 3600 }, { microCredits: 500_000n, joules: 3600 }])).toBeCloseTo(1000, 9);
    expect(creditsPerKwh([])).toBeNull();
  });

  it('estimates board power from the adapter\'s name, and says when it does not know it', () => {
    const adapter = (description: string) => ({ vendor: '', architecture: '', device: '', description, isFallbackAdapter: false });
    expect(boardPowerWatts(adapter('NVIDIA GeForce RTX 4090'))).toEqual({ watts: 450, known: true });
    expect(boardPowerWatts({ ...adapter(''), architecture: 'swiftshader' })).toEqual({ watts: 65, known: true });
    expect(boardPowerWatts(adapter('Mystery GPU')).known).toBe(false);
  });
});
