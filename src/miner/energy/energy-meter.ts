// A unit's joules from the best source at hand: the paired local probe, else a wall meter's typed watts, else the
// battery's discharge, else an estimate from the adapter's board power; each figure labelled with its method.
import type { ProbeMethod, UnitEnergy } from '../../protocol/energy.ts';
import type { AdapterInfo } from '../../protocol/messages.ts';
import type { UnitTiming } from '../worker-messages.ts';
import { boardPowerWatts, ESTIMATE_RELATIVE_UNCERTAINTY } from './board-power.ts';
import { readProbe } from './probe-client.ts';
import { CumulativeSeries } from './series.ts';

/** What the person set up: each source is used only when configured. */
export interface EnergyConfig {
  probe: { port: number; code: string } | null;
  /** A wall meter's readings, typed in: with mining on, and with it off (the idle baseline). */
  meter: { miningWatts: number; idleWatts: number } | null;
  /** The battery's capacity in watt-hours, for its discharge while unplugged. */
  batteryWh: number | null;
  /** Idle power measured through the probe with mining off, per method. */
  probeIdle: { method: ProbeMethod; watts: number } | null;
}

/** How often the probe is read while mining, so that every unit's start lies between two readings. */
export const PROBE_POLL_MS = 250;
/** A reading of a wall meter a person types: a few watts of resolution and a wobbling figure, about 10%. */
const METER_RELATIVE_UNCERTAINTY = 0.1;
/** The Battery Status API reports the level in steps of 1%. */
const BATTERY_LEVEL_STEP = 0.01;

interface BatteryManager extends EventTarget {
  charging: boolean;
  level: number;
}

export class EnergyMeter {
  private readonly probeSeries = new CumulativeSeries();
  private probeMethod: ProbeMethod | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private battery: BatteryManager | undefined;
  private readonly batteryLevels: { atMs: number; level: number }[] = [];
  /** Why the last probe read failed, for the page; empty when it worked. */
  probeProblem = '';

  constructor(
    private readonly config: () => EnergyConfig,
    private readonly adapter: () => AdapterInfo | undefined,
    private readonly onProbe: (problem: string, method: ProbeMethod | null) => void = () => undefined,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.pollProbe(), PROBE_POLL_MS);
    void this.pollProbe();
    void this.watchBattery();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.probeSeries.clear();
  }

  /** The unit's energy over its interval from the best configured source; undefined when none can say. */
  async unitEnergy(unit: UnitTiming): Promise<UnitEnergy | undefined> {
    const seconds = Math.max(0, unit.finishedAtMs - unit.startedAtMs) / 1000;
    const config = this.config();
    if (config.probe) {
      await this.pollProbe();
      const measured = this.probeSeries.between(unit.startedAtMs, unit.finishedAtMs);
      if (measured && this.probeMethod && measured.joules > 0) {
        const idle = config.probeIdle?.method === this.probeMethod ? config.probeIdle.watts * seconds : undefined;
        return { joules: measured.joules, seconds, method: this.probeMethod, uncertaintyJoules: measured.uncertaintyJoules, ...aboveIdle(measured.joules, idle) };
      }
    }
    if (config.meter && config.meter.miningWatts > 0 && seconds > 0) {
      const joules = config.meter.miningWatts * seconds;
      return { joules, seconds, method: 'meter', uncertaintyJoules: joules * METER_RELATIVE_UNCERTAINTY, ...aboveIdle(joules, config.meter.idleWatts * seconds) };
    }
    const battery = config.batteryWh ? this.batteryWatts(config.batteryWh) : undefined;
    if (battery && seconds > 0) {
      const joules = battery.watts * seconds;
      return { joules, seconds, method: 'battery', uncertaintyJoules: joules * battery.relative };
    }
    const adapter = this.adapter();
    if (!adapter || unit.gpuSeconds <= 0) return undefined;
    const joules = boardPowerWatts(adapter).watts * unit.gpuSeconds;
    return { joules, seconds: unit.gpuSeconds, method: 'estimate', uncertaintyJoules: joules * ESTIMATE_RELATIVE_UNCERTAINTY };
  }

  private async pollProbe(): Promise<void> {
    const probe = this.config().probe;
    if (!probe) return;
    try {
      const reading = await readProbe(probe.port, probe.code);
      if (reading.method !== this.probeMethod) this.probeSeries.clear();
      this.probeMethod = reading.method;
      if (reading.method) this.probeSeries.add({ atMs: reading.atMs, joules: reading.joules, uncertaintyJoules: reading.uncertaintyJoules });
      this.report('');
    } catch (err) {
      this.report((err as Error).message);
    }
  }

  private report(problem: string): void {
    if (problem === this.probeProblem) return;
    this.probeProblem = problem;
    this.onProbe(problem, this.probeMethod);
  }

  private async watchBattery(): Promise<void> {
    if (this.battery || typeof navigator === 'undefined') return;
    const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryManager> };
    if (!nav.getBattery) return;
    this.battery = await nav.getBattery();
    const record = () => {
      if (this.battery?.charging) this.batteryLevels.length = 0;
      else if (this.battery) this.batteryLevels.push({ atMs: Date.now(), level: this.battery.level });
    };
    this.battery.addEventListener('levelchange', record);
    this.battery.addEventListener('chargingchange', record);
    record();
  }

  /** Average discharge power since unplugged, once the level has fallen by at least one step. */
  private batteryWatts(capacityWh: number): { watts: number; relative: number } | undefined {
    const levels = this.batteryLevels;
    if (!this.battery || this.battery.charging || levels.length < 2) return undefined;
    const first = levels[0];
    const last = levels[levels.length - 1];
    const drop = first.level - last.level;
    if (drop <= 0 || last.atMs <= first.atMs) return undefined;
    return { watts: (drop * capacityWh * 3600) / ((last.atMs - first.atMs) / 1000), relative: Math.hypot(BATTERY_LEVEL_STEP / drop, 0.1) };
  }
}

/** The figure above the idle baseline, where one was measured, never below zero. */
function aboveIdle(joules: number, idleJoules: number | undefined): { aboveIdleJoules?: number } {
  return idleJoules === undefined ? {} : { aboveIdleJoules: Math.max(0, joules - idleJoules) };
}

