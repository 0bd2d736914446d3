// The page's energy set-up and figures: the paired probe, a wall meter's typed watts, the battery's capacity and the
// electricity price, kept in localStorage and validated on read; the probe found by itself on its default port.
import * as v from 'valibot';
import { DEFAULT_PROBE_PORT, PROBE_METHODS, type ProbeHello, type ProbeMethod } from '../protocol/energy.ts';
import type { EnergyConfig } from '../miner/energy/energy-meter.ts';
import { findProbe, readProbe } from '../miner/energy/probe-client.ts';

const STORAGE_KEY = 'ergon-energy';
/** How long idle power is measured through the probe, mining off. */
export const IDLE_MEASURE_MS = 5_000;

const Watts = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100_000));
const EnergySettingsSchema = v.object({
  probe: v.fallback(v.nullable(v.object({
    port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65_535)),
    code: v.pipe(v.string(), v.regex(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/)),
  })), null),
  meter: v.fallback(v.nullable(v.object({ miningWatts: Watts, idleWatts: Watts })), null),
  batteryWh: v.fallback(v.nullable(v.pipe(v.number(), v.finite(), v.minValue(1), v.maxValue(10_000))), null),
  probeIdle: v.fallback(v.nullable(v.object({ method: v.picklist(PROBE_METHODS), watts: Watts })), null),
  /** Price of a kWh in the person's currency, for the session's energy cost. */
  pricePerKwh: v.fallback(v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100))), null),
});
export type EnergySettings = v.InferOutput<typeof EnergySettingsSchema>;

export function parseEnergySettings(stored: unknown): EnergySettings {
  return v.parse(EnergySettingsSchema, typeof stored === 'object' && stored !== null ? stored : {});
}

function read(): EnergySettings {
  try {
    return parseEnergySettings(JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}'));
  } catch {
    return parseEnergySettings({}); // unreadable JSON: start from the defaults, the next save overwrites it
  }
}

class EnergyState {
  value = $state<EnergySettings>(read());
  /** A probe seen on the default (or paired) port, or null. */
  found = $state<ProbeHello | null>(null);
  /** Why the probe is not in use, in words; empty when it is. */
  probeProblem = $state('');
  /** The method the paired probe measures with now. */
  probeMethod = $state<ProbeMethod | null>(null);
  busy = $state('');

  /** What the meter reads; a plain object, so that the miner's code never sees Svelte's proxies. */
  config(): EnergyConfig {
    return $state.snapshot(this.value);
  }

  update(patch: Partial<EnergySettings>): void {
    this.value = parseEnergySettings({ ...$state.snapshot(this.value), ...patch });
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.value));
  }

  /** Looks for a probe on the paired port, or the default one: the page finds it without being told. */
  async discover(): Promise<void> {
    const port = this.value.probe?.port ?? DEFAULT_PROBE_PORT;
    try {
      this.found = await findProbe(port);
      this.probeProblem = this.value.probe ? '' : 'A probe is running on this machine: type the pairing code it printed to use it.';
    } catch (err) {
      this.found = null;
      this.probeProblem = (err as Error).message;
    }
  }

  /** Pairs with the probe using the code it printed: one reading must succeed before it is kept. */
  async pair(codeText: string, port = DEFAULT_PROBE_PORT): Promise<void> {
    const code = codeText.trim().toUpperCase();
    this.busy = 'pairing';
    try {
      const reading = await readProbe(port, code);
      this.update({ probe: { port, code } });
      this.probeMethod = reading.method;
      this.probeProblem = reading.method ? '' : 'Paired, but the probe reads no energy source on this machine (see its output for why).';
    } catch (err) {
      this.probeProblem = (err as Error).message;
    } finally {
      this.busy = '';
    }
  }

  forgetProbe(): void {
    this.update({ probe: null, probeIdle: null });
    this.probeMethod = null;
  }

  /** Measures idle power through the probe over IDLE_MEASURE_MS; the person keeps mining off meanwhile. */
  async measureIdle(): Promise<void> {
    const probe = this.value.probe;
    if (!probe) return;
    this.busy = 'measuring idle power';
    try {
      const first = await readProbe(probe.port, probe.code);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MEASURE_MS));
      const second = await readProbe(probe.port, probe.code);
      if (!first.method || first.method !== second.method || second.atMs <= first.atMs) throw new Error('the probe changed source while measuring; try again');
      this.update({ probeIdle: { method: first.method, watts: (second.joules - first.joules) / ((second.atMs - first.atMs) / 1000) } });
    } catch (err) {
      this.probeProblem = (err as Error).message;
    } finally {
      this.busy = '';
    }
  }

  /** The meter's report on the probe while mining. */
  probeReport(problem: string, method: ProbeMethod | null): void {
    this.probeProblem = problem;
    this.probeMethod = method;
  }
}

export const energy = new EnergyState();
