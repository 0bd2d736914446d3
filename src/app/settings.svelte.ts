// The person's settings: throttle, GPU-time cap, background and battery behaviour, coordinators; kept in
// localStorage and validated field by field on every read, so a bad or old value falls back to its default.
import * as v from 'valibot';
import { DEFAULT_OPERAND_CACHE_MIB } from '../miner/operand-cache.ts';

const STORAGE_KEY = 'ergon-settings';
export const MIN_DUTY_PERCENT = 10;
export const MAX_COORDINATORS = 8;
/** The most MiB of operands a person may let the page keep. */
export const MAX_OPERAND_CACHE_MIB = 16_384;

function defaultCoordinators(): string[] {
  return [new URL('/', location.href).href];
}

const CoordinatorUrl = v.pipe(
  v.string(),
  v.url(),
  v.check((s) => /^https?:\/\//.test(s), 'a coordinator is an http(s) address'),
  v.transform((s) => new URL(s).href.replace(/\/?$/, '/')),
);

const SettingsSchema = v.object({
  dutyPercent: v.fallback(v.pipe(v.number(), v.integer(), v.minValue(MIN_DUTY_PERCENT), v.maxValue(100)), 100),
  gpuSecondsPerMinute: v.fallback(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(60)), 60),
  keepMiningInBackground: v.fallback(v.boolean(), false),
  pauseOnBattery: v.fallback(v.boolean(), true),
  /**
   * Cut the duty cycle while the device reports serious or critical CPU pressure. On a GPU that is really the CPU
   * (a software adapter) mining is itself the pressure, so a person lending all of it may turn this off.
   */
  backOffUnderPressure: v.fallback(v.boolean(), true),
  /** Operands kept (GPU, memory, and across visits in Cache Storage), MiB; 0 fetches every unit's operands. */
  operandCacheMiB: v.fallback(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_OPERAND_CACHE_MIB)), DEFAULT_OPERAND_CACHE_MIB),
  coordinators: v.fallback(v.pipe(v.array(CoordinatorUrl), v.minLength(1), v.maxLength(MAX_COORDINATORS)), defaultCoordinators),
});
export type Settings = v.InferOutput<typeof SettingsSchema>;

export function parseSettings(stored: unknown): Settings {
  return v.parse(SettingsSchema, typeof stored === 'object' && stored !== null ? stored : {});
}

/** Checks one address typed by the person; returns its normal form or why it is refused. */
export function parseCoordinatorUrl(text: string): { ok: true; url: string } | { ok: false; error: string } {
  const parsed = v.safeParse(CoordinatorUrl, text.trim());
  return parsed.success ? { ok: true, url: parsed.output } : { ok: false, error: parsed.issues[0].message };
}

function read(): Settings {
  try {
    return parseSettings(JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}'));
  } catch {
    return parseSettings({}); // unreadable JSON: start from the defaults, the next save overwrites it
  }
}

class SettingsState {
  value = $state<Settings>(read());

  update(patch: Partial<Settings>): void {
    this.value = parseSettings({ ...this.value, ...patch });
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.value));
  }
}

export const settings = new SettingsState();
