// The miner's choice of source, in Node: a real probe server over a fake sysfs tree, a typed wall meter, an estimate.
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { EnergyMeter, type EnergyConfig } from '../../../src/miner/energy/energy-meter.ts';
import { Sampler } from '../../../src/probe/sampler.ts';
import { startProbeServer, type RunningProbeServer } from '../../../src/probe/server.ts';
import { discoverPowercap } from '../../../src/probe/sysfs.ts';
import { FakeSysfs } from '../../helpers/fake-sysfs.ts';

const NONE: EnergyConfig = { probe: null, meter: null, batteryWh: null, probeIdle: null };
const ADAPTER = { vendor: 'nvidia', architecture: '', device: '', description: 'NVIDIA GeForce RTX 4090', isFallbackAdapter: false };
const timing = (startedAtMs: number, finishedAtMs: number, gpuSeconds: number) => ({
  gpuSeconds, submitSeconds: gpuSeconds, dispatches: 1, waitedMs: 0, startedAtMs, finishedAtMs, restMs: 0,
});

describe('energy meter', () => {
  let server: RunningProbeServer | undefined;
  let root = '';
  afterEach(async () => {
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('falls back to an estimate from board power, labelled as one, and prefers a typed wall meter with its idle baseline', async () => {
    const estimate = new EnergyMeter(() => NONE, () => ADAPTER);
    // 450 W board power * 0.2 s busy = 90 J, +/-50%.
    expect(await estimate.unitEnergy(timing(0, 500, 0.2))).toEqual({ joules: 90, seconds: 0.2, method: 'estimate', uncertaintyJoules: 45 });
    const meter = new EnergyMeter(() => ({ ...NONE, meter: { miningWatts: 300, idleWatts: 80 } }), () => ADAPTER);
    // 300 W * 0.5 s = 150 J in all, (300 - 80) W * 0.5 s = 110 J above idle.
    expect(await meter.unitEnergy(timing(0, 500, 0.2))).toEqual({ joules: 150, seconds: 0.5, method: 'meter', uncertaintyJoules: 15, aboveIdleJoules: 110 });
    expect(await new EnergyMeter(() => NONE, () => undefined).unitEnergy(timing(0, 500, 0.2))).toBeUndefined();
  });

  it('measures a unit through a paired probe whose RAPL counter runs at 40 W', async () => {
    const fs = await FakeSysfs.create();
    root = fs.root;
    await fs.raplZone('intel-rapl:0', 'package-0', 0, 262_143_328_850);
    const found = { sources: [], unreadable: [], absent: [] };
    await discoverPowercap(fs.root, found);
    let now = 10_000;
    const sampler = new Sampler(found.sources, () => now);
    server = await startProbeServer({
      host: '127.0.0.1', port: 0, allowedOrigins: [], pairingCode: 'ABCD-EFGH',
      hello: () => ({ probe: 'ergon-probe', version: 1, methods: sampler.methods }),
      reading: async () => {
        await sampler.sample();
        return sampler.reading();
      },
    });
    const port = server.port;
    const reports: string[] = [];
    const meter = new EnergyMeter(() => ({ ...NONE, probe: { port, code: 'ABCD-EFGH' }, probeIdle: { method: 'rapl', watts: 10 } }), () => ADAPTER, (p) => reports.push(p));
    // The probe's clock is the test's: a reading at 10 s (0 J), then the unit from 10.5 s to 11.5 s ends at 12 s (80 J).
    await (meter as unknown as { pollProbe(): Promise<void> }).pollProbe();
    await fs.setRapl('intel-rapl:0', 80_000_000);
    now = 12_000;
    const energy = await meter.unitEnergy(timing(10_500, 11_500, 0.9));
    // 40 W over 1 s = 40 J; above a 10 W idle: 30 J.
    expect(energy).toMatchObject({ method: 'rapl', seconds: 1, aboveIdleJoules: 30 });
    expect(energy?.joules).toBeCloseTo(40, 9);
    expect(reports).toEqual([]);

    const wrong = new EnergyMeter(() => ({ ...NONE, probe: { port, code: 'WXYZ-WXYZ' } }), () => ADAPTER, (p) => reports.push(p));
    expect((await wrong.unitEnergy(timing(0, 1_000, 0.9)))?.method).toBe('estimate');
    expect(reports[0]).toMatch(/refused the pairing code/);
  });
});
