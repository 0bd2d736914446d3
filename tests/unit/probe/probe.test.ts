import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { counterDelta, EnergyAccumulator, trapezoid } from '../../../src/probe/accumulator.ts';
import { discoverNvidia, parseNvidiaSmi } from '../../../src/probe/nvidia-smi.ts';
import { bestMethod, Sampler } from '../../../src/probe/sampler.ts';
import { discoverHwmon, discoverPowercap, fixFor, type Discovery } from '../../../src/probe/sysfs.ts';
import { FakeSysfs } from '../../helpers/fake-sysfs.ts';

const cleanUp: string[] = [];
afterEach(async () => {
  for (const dir of cleanUp.splice(0)) await rm(dir, { recursive: true, force: true });
});
const empty = (): Discovery => ({ sources: [], unreadable: [], absent: [] });

describe('energy maths', () => {
  it('takes a counter\'s step across its wrap-around at max_energy_range_uj', () => {
    expect(counterDelta(10, 25, 100)).toBe(15);
    // 262143.328850 J is a real package's range: 262143 -> 5 wraps and has moved 0.32885 + 5 J.
    expect(counterDelta(262_143, 5, 262_143.328_85)).toBeCloseTo(5.328_85, 9);
    expect(() => counterDelta(10, 5, null)).toThrow(/no wrap range/);
  });

  it('integrates sampled power by the trapezoid rule, as worked out by hand', () => {
    // 100 W then 140 W over 0.5 s: (100 + 140) / 2 * 0.5 = 60 J, sampling bound |140 - 100| / 2 * 0.5 = 10 J.
    expect(trapezoid(100, 140, 0.5)).toEqual({ joules: 60, samplingJoules: 10 });
    const acc = new EnergyAccumulator('nvml-power');
    acc.add(0, { kind: 'power', watts: 100 });
    acc.add(500, { kind: 'power', watts: 140 });
    acc.add(1500, { kind: 'power', watts: 140 });
    // 60 J + 140 W * 1 s = 200 J; uncertainty sqrt((5% of 200)^2 + 10^2) = sqrt(200)
    expect(acc.joules).toBeCloseTo(200, 9);
    expect(acc.uncertaintyJoules).toBeCloseTo(Math.sqrt(200), 9);
  });

  it('marks a counter that has not ticked since the last sample as stale', () => {
    const acc = new EnergyAccumulator('rapl');
    acc.add(0, { kind: 'counter', joules: 5, maxJoules: 100 });
    acc.add(100, { kind: 'counter', joules: 5, maxJoules: 100 });
    expect(acc.stale).toBe(true);
    acc.add(200, { kind: 'counter', joules: 7, maxJoules: 100 });
    expect(acc).toMatchObject({ stale: false, joules: 2 });
  });

  it('ranks methods best first: a hardware counter over sampled power, NVIDIA before the CPU package', () => {
    expect(bestMethod(['hwmon-power', 'rapl', 'nvml-power'])).toBe('rapl');
    expect(bestMethod(['hwmon-power', 'nvml-energy', 'rapl'])).toBe('nvml-energy');
    expect(bestMethod([])).toBeNull();
  });
});

describe('sysfs sources', () => {
  it('reads top-level RAPL zones (not their subzones), sums them across a wrap, and reads hwmon power and energy', async () => {
    const fs = await FakeSysfs.create();
    cleanUp.push(fs.root);
    await fs.raplZone('intel-rapl:0', 'package-0', 262_000_000_000, 262_143_328_850);
    await fs.raplZone('intel-rapl:0:0', 'core', 1_000, 262_143_328_850);
    await fs.raplZone('intel-rapl:1', 'package-1', 1_000_000, 262_143_328_850);
    await fs.write('class/hwmon/hwmon2/name', 'amdgpu');
    await fs.write('class/hwmon/hwmon2/power1_input', 45_000_000);
    await fs.write('class/hwmon/hwmon2/power1_label', 'PPT');
    await fs.write('class/hwmon/hwmon3/name', 'zenergy');
    await fs.write('class/hwmon/hwmon3/energy1_input', 9_000_000);
    const found = empty();
    await discoverPowercap(fs.root, found);
    await discoverHwmon(fs.root, found);
    expect(found.sources.map((s) => [s.method, s.label])).toEqual([
      ['rapl', 'intel-rapl:0 package-0'],
      ['rapl', 'intel-rapl:1 package-1'],
      ['hwmon-power', 'hwmon2 amdgpu PPT'],
      ['hwmon-energy', 'hwmon3 zenergy energy1'],
    ]);
    let now = 1_000;
    const sampler = new Sampler(found.sources, () => now);
    await sampler.sample();
    // Package 0 wraps: 262000 J -> max 262143.32885 J -> 57.67115 J; package 1 moves 20 J.
    await fs.setRapl('intel-rapl:0', 57_671_150);
    await fs.setRapl('intel-rapl:1', 21_000_000);
    await fs.write('class/hwmon/hwmon2/power1_input', 55_000_000);
    await fs.write('class/hwmon/hwmon3/energy1_input', 12_000_000);
    now = 3_000;
    await sampler.sample();
    const reading = sampler.reading();
    expect(reading.method).toBe('rapl');
    expect(reading.joules).toBeCloseTo(143.328_85 + 57.671_15 + 20, 6);
    expect(reading.uncertaintyJoules).toBeCloseTo(Math.hypot(201 * 0.05, 20 * 0.05), 6);
    // hwmon is listed beside it, never added to it: (45 + 55) / 2 W * 2 s = 100 J; the counter moved 3 J.
    expect(reading.sources.find((s) => s.method === 'hwmon-power')?.joules).toBeCloseTo(100, 9);
    expect(reading.sources.find((s) => s.method === 'hwmon-energy')?.joules).toBeCloseTo(3, 9);
  });

  it('says which folders are absent, and explains a file it may not read with the command that fixes it', async () => {
    const fs = await FakeSysfs.create();
    cleanUp.push(fs.root);
    await fs.raplZone('intel-rapl:0', 'package-0', 5, 10);
    await fs.write('class/powercap/intel-rapl:1/energy_uj', 'garbage');
    const found = empty();
    await discoverPowercap(fs.root, found);
    await discoverHwmon(fs.root, found);
    expect(found.sources).toHaveLength(1);
    expect(found.absent).toEqual([join(fs.root, 'class', 'hwmon')]);
    expect(found.unreadable).toEqual([expect.objectContaining({ path: join(fs.root, 'class/powercap/intel-rapl:1/energy_uj') })]);
    expect(found.unreadable[0].error).toMatch(/not a non-negative integer/);
    // As root this test cannot make a file unreadable; the advice for EACCES is checked directly.
    expect(fixFor('/sys/class/powercap/intel-rapl:0/energy_uj', 'EACCES')).toMatch(/^sudo chmod o\+r \/sys\/class\/powercap\/intel-rapl:0\/energy_uj/);
  });

  it('reads this machine\'s real powercap and hwmon where present, and says they are absent where not', async () => {
    const found = empty();
    await discoverPowercap('/sys', found);
    await discoverHwmon('/sys', found);
    for (const folder of ['/sys/class/powercap', '/sys/class/hwmon']) {
      if (!existsSync(folder)) expect(found.absent).toContain(folder);
    }
    for (const source of found.sources) {
      const reading = await source.read();
      expect(reading.kind === 'counter' ? reading.joules : reading.watts).toBeGreaterThanOrEqual(0);
    }
    for (const u of found.unreadable) expect(u.fix).not.toBe('');
  });
});

describe('nvidia-smi', () => {
  /** A stand-in nvidia-smi: a script that prints the recorded output in `out`, as NVIDIA documents the CSV query. */
  async function fakeNvidiaSmi(): Promise<{ command: string; print: (text: string) => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'ergon-nvsmi-'));
    cleanUp.push(dir);
    const out = join(dir, 'out.txt');
    const command = join(dir, 'nvidia-smi');
    await writeFile(command, `#!/bin/sh\n[ "$1" = "--query-gpu=index,name,total_energy_consumption,power.draw" ] || { echo "unexpected $1" >&2; exit 2; }\ncat "${out}"\n`);
    await chmod(command, 0o755);
    return { command, print: (text) => writeFile(out, text) };
  }

  it('parses the documented CSV, with [N/A] and [Not Supported] fields', () => {
    expect(parseNvidiaSmi('0, NVIDIA H200, 123456789, 350.12\n1, NVIDIA GeForce RTX 4090, [N/A], 64.50\n2, Tesla T4, [Not Supported], [N/A]\n')).toEqual([
      { index: 0, name: 'NVIDIA H200', energyJoules: 123_456.789, watts: 350.12 },
      { index: 1, name: 'NVIDIA GeForce RTX 4090', energyJoules: null, watts: 64.5 },
      { index: 2, name: 'Tesla T4', energyJoules: null, watts: null },
    ]);
    expect(() => parseNvidiaSmi('0, GPU, lots, 5')).toThrow(/not a number/);
  });

  it('uses the energy counter where the driver has one, else power draw, labelled as such', async () => {
    const smi = await fakeNvidiaSmi();
    await smi.print('0, NVIDIA H200, 1000000, 300.00\n1, NVIDIA GeForce RTX 4090, [N/A], 100.00\n');
    const { sources, problem } = await discoverNvidia(smi.command);
    expect(problem).toBeNull();
    expect(sources.map((s) => [s.method, s.label])).toEqual([['nvml-energy', 'GPU 0 NVIDIA H200'], ['nvml-power', 'GPU 1 NVIDIA GeForce RTX 4090']]);
    let now = 0;
    const sampler = new Sampler(sources, () => now);
    await sampler.sample();
    await smi.print('0, NVIDIA H200, 1450000, 500.00\n1, NVIDIA GeForce RTX 4090, [N/A], 300.00\n');
    now = 1_000;
    await sampler.sample();
    const reading = sampler.reading();
    // The counter moved 450000 mJ = 450 J; the 4090's power went 100 -> 300 W over 1 s: 200 J, shown apart.
    expect(reading).toMatchObject({ method: 'nvml-energy', joules: 450 });
    expect(reading.sources.find((s) => s.method === 'nvml-power')?.joules).toBeCloseTo(200, 9);
  });

  it('reports a missing nvidia-smi as absent, not as a failure', async () => {
    const { sources, problem } = await discoverNvidia('/nonexistent/nvidia-smi');
    expect(sources).toEqual([]);
    expect(problem).toMatch(/not found/);
  });
});
