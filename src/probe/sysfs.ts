// Power and energy files the kernel exposes: RAPL zones under class/powercap and hwmon chips under class/hwmon,
// read from a configurable sysfs root (tests point it at a tree they write). Unreadable files are reported with
// the command that makes them readable.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProbeMethod } from '../protocol/energy.ts';
import type { RawReading } from './accumulator.ts';

/** One file-backed source: how to read it, and what a person reads beside it. */
export interface SysfsSource {
  id: string;
  method: ProbeMethod;
  label: string;
  read(): Promise<RawReading>;
}

/** A file that exists but could not be read, and how to fix it. */
export interface Unreadable {
  path: string;
  error: string;
  fix: string;
}

export interface Discovery {
  sources: SysfsSource[];
  unreadable: Unreadable[];
  /** Folders looked in that do not exist on this machine. */
  absent: string[];
}

async function readText(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/** Parses a sysfs integer (energy_uj, power1_input...): a decimal non-negative integer, nothing else. */
export function parseSysfsInteger(text: string, path: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,20}$/.test(trimmed)) throw new Error(`${path} holds "${trimmed.slice(0, 40)}", not a non-negative integer`);
  return Number(trimmed);
}

export function fixFor(path: string, code: string | undefined): string {
  if (code === 'EACCES' || code === 'EPERM') {
    // Since Linux 5.10 energy_uj is readable by root only (the PLATYPUS side channel); granting read to one user
    // is the fix, not running the probe as root.
    return `sudo chmod o+r ${path}   (lasts until reboot; for good, a udev rule: ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chmod o+r /sys%p/energy_uj")`;
  }
  return `check that ${path} is a sysfs attribute this kernel provides`;
}

async function listDir(path: string): Promise<string[] | null> {
  try {
    return (await readdir(path)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Tries one read now, so that discovery reports an unreadable file once, with its fix, instead of failing later. */
async function probeRead(path: string, unreadable: Unreadable[]): Promise<boolean> {
  try {
    parseSysfsInteger(await readText(path), path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    unreadable.push({ path, error: code ?? (err as Error).message, fix: fixFor(path, code) });
    return false;
  }
}

/**
 * RAPL zones: top-level ones only (intel-rapl:0, not its subzones intel-rapl:0:0, which it contains), so that their
 * sum counts nothing twice. Each wraps at its max_energy_range_uj.
 */
export async function discoverPowercap(sysRoot: string, found: Discovery): Promise<void> {
  const base = join(sysRoot, 'class', 'powercap');
  const zones = await listDir(base);
  if (zones === null) {
    found.absent.push(base);
    return;
  }
  for (const zone of zones.filter((z) => /^[a-z-]+:\d+$/.test(z))) {
    const energyPath = join(base, zone, 'energy_uj');
    if (!(await probeRead(energyPath, found.unreadable))) continue;
    const name = await readText(join(base, zone, 'name')).catch(() => zone);
    const maxPath = join(base, zone, 'max_energy_range_uj');
    const maxJoules = await readText(maxPath).then((t) => parseSysfsInteger(t, maxPath) / 1e6, () => null);
    found.sources.push({
      id: `rapl:${zone}`,
      method: 'rapl',
      label: `${zone} ${name}`,
      read: async () => ({ kind: 'counter', joules: parseSysfsInteger(await readText(energyPath), energyPath) / 1e6, maxJoules }),
    });
  }
}

/** hwmon chips: energy*_input (microjoules, a counter) and power*_input (microwatts, sampled). */
export async function discoverHwmon(sysRoot: string, found: Discovery): Promise<void> {
  const base = join(sysRoot, 'class', 'hwmon');
  const chips = await listDir(base);
  if (chips === null) {
    found.absent.push(base);
    return;
  }
  for (const chip of chips) {
    const files = (await listDir(join(base, chip))) ?? [];
    const chipName = await readText(join(base, chip, 'name')).catch(() => chip);
    for (const file of files) {
      const m = /^(energy|power)(\d+)_input$/.exec(file);
      if (!m) continue;
      const path = join(base, chip, file);
      if (!(await probeRead(path, found.unreadable))) continue;
      const label = await readText(join(base, chip, `${m[1]}${m[2]}_label`)).catch(() => `${m[1]}${m[2]}`);
      const energy = m[1] === 'energy';
      found.sources.push({
        id: `hwmon:${chip}:${file}`,
        method: energy ? 'hwmon-energy' : 'hwmon-power',
        label: `${chip} ${chipName} ${label}`,
        read: async () => {
          const value = parseSysfsInteger(await readText(path), path);
          // hwmon energy counters are 64-bit microjoules in practice: no wrap within a probe's life.
          return energy ? { kind: 'counter', joules: value / 1e6, maxJoules: null } : { kind: 'power', watts: value / 1e6 };
        },
      });
    }
  }
}
