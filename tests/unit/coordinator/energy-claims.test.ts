import { describe, expect, it } from 'vitest';
import { checkEnergy, MAX_PLAUSIBLE_OPS_PER_JOULE } from '../../../src/coordinator/energy-claims.ts';
import { efficiencyTable } from '../../../src/coordinator/rankings.ts';

const OPS = 2_000_000_000n; // 2 GFLOP

describe('energy claims', () => {
  it('signs a plausible claim with its method and uncertainty', () => {
    expect(checkEnergy({ joules: 10, seconds: 0.5, method: 'rapl', uncertaintyJoules: 0.5, aboveIdleJoules: 4 }, OPS, 1)).toEqual({
      joules: 10, joulesSource: 'rapl', uncertaintyJoules: 0.5, aboveIdleJoules: 4, refused: null,
    });
    expect(checkEnergy(undefined, OPS, 1)).toMatchObject({ joules: 0, joulesSource: 'none', refused: null });
  });

  it('refuses more ops per joule than any device does, more watts than the method sees, zero joules and idle above total', () => {
    const tooEfficient = checkEnergy({ joules: Number(OPS) / MAX_PLAUSIBLE_OPS_PER_JOULE / 2, seconds: 0.5, method: 'nvml-energy', uncertaintyJoules: 0 }, OPS, 1);
    expect(tooEfficient).toMatchObject({ joules: 0, joulesSource: 'none' });
    expect(tooEfficient.refused).toMatch(/beyond any device/);
    expect(checkEnergy({ joules: 600, seconds: 1, method: 'battery', uncertaintyJoules: 1 }, OPS, 1).refused).toMatch(/over 250 W/);
    expect(checkEnergy({ joules: 600, seconds: 1, method: 'meter', uncertaintyJoules: 1 }, OPS, 1).refused).toBeNull();
    expect(checkEnergy({ joules: 0, seconds: 1, method: 'rapl', uncertaintyJoules: 0 }, OPS, 1).refused).toMatch(/0 J/);
    expect(checkEnergy({ joules: 5, seconds: 1, method: 'meter', uncertaintyJoules: 0, aboveIdleJoules: 6 }, OPS, 1).refused).toMatch(/above idle/);
    // Joules over an interval longer than lease to result were not measured for this unit; 50 kW over 30 ms is too much.
    expect(checkEnergy({ joules: 5, seconds: 5, method: 'rapl', uncertaintyJoules: 0 }, OPS, 1).refused).toMatch(/passed between lease and result/);
    expect(checkEnergy({ joules: 1500, seconds: 0.03, method: 'rapl', uncertaintyJoules: 0 }, OPS, 1).refused).toMatch(/over 10000 W/);
  });
});

describe('efficiency table', () => {
  const row = (minerKey: string, joulesSource: string, joules: number, ops = 10_000_000_000n, adapter = 'nvidia RTX 4090') => ({
    minerKey, adapter, joulesSource, units: 1, ops, joules, uncertaintyJoules: 1, gpuSeconds: 1, wallSeconds: 2,
  });

  it('ranks within a method only, puts estimates after every measurement and counts unmeasured units apart', () => {
    const table = efficiencyTable([
      row('est', 'estimate', 1), // 10 GFLOP/J, but only an estimate
      row('slow', 'rapl', 10), // 1 GFLOP/J
      row('fast', 'rapl', 5, 10_000_000_000n, 'intel UHD'), // 2 GFLOP/J
      row('gpu', 'nvml-energy', 20),
      row('none', 'none', 0),
    ]);
    expect(table.groups.map((g) => g.method)).toEqual(['nvml-energy', 'rapl', 'estimate']);
    expect(table.groups[1].miners.map((m) => [m.minerKey, m.gflopsPerJoule])).toEqual([['fast', 2], ['slow', 1]]);
    expect(table.groups[2]).toMatchObject({ estimate: true });
    // Throughput from the coordinator's own clock (2 s) beside the miner's self-reported GPU time (1 s).
    expect(table.groups[1].miners[0]).toMatchObject({ gflopsMeasured: 5, gflopsSelfReported: 10 });
    expect(table.unmeasuredUnits).toBe(1);
    // Per declared adapter model, within the method: 'fast' on one, 'slow' on the other.
    expect(table.groups[1].adapters).toEqual([
      { adapter: 'intel UHD', miners: 1, units: 1, gflopsPerJoule: 2 },
      { adapter: 'nvidia RTX 4090', miners: 1, units: 1, gflopsPerJoule: 1 },
    ]);
  });
});
