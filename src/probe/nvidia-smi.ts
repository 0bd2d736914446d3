// NVIDIA GPUs through nvidia-smi (no native binding): the driver's energy counter where it has one
// (total_energy_consumption, millijoules since the driver loaded), else power.draw sampled and integrated.
import { execFile } from 'node:child_process';
import type { RawReading } from './accumulator.ts';
import type { SysfsSource } from './sysfs.ts';

/** The query, in NVIDIA's documented CSV form: one line per GPU, no header, no units. */
export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,total_energy_consumption,power.draw', '--format=csv,noheader,nounits'];
const NVIDIA_SMI_TIMEOUT_MS = 5_000;

export interface GpuLine {
  index: number;
  name: string;
  /** null where the driver answers [N/A] or [Not Supported] */
  energyJoules: number | null;
  watts: number | null;
}

function field(text: string, what: string, scale: number): number | null {
  const t = text.trim();
  if (/^\[(N\/A|Not Supported|Unknown Error)\]$/i.test(t) || t === 'N/A') return null;
  const x = Number(t);
  if (!/^\d+(\.\d+)?$/.test(t) || !Number.isFinite(x)) throw new Error(`nvidia-smi gave "${t}" for ${what}, not a number`);
  return x * scale;
}

/** Parses the query's output; throws with the line when it is not what NVIDIA documents. */
export function parseNvidiaSmi(output: string): GpuLine[] {
  return output
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const parts = line.split(',');
      if (parts.length < 4) throw new Error(`nvidia-smi line "${line}" does not have index, name, energy and power`);
      const index = Number(parts[0].trim());
      if (!Number.isInteger(index) || index < 0) throw new Error(`nvidia-smi line "${line}" does not start with a GPU index`);
      return {
        index,
        name: parts.slice(1, -2).join(',').trim(),
        energyJoules: field(parts[parts.length - 2], 'total_energy_consumption', 1e-3),
        watts: field(parts[parts.length - 1], 'power.draw', 1),
      };
    });
}

function run(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, NVIDIA_SMI_ARGS, { timeout: NVIDIA_SMI_TIMEOUT_MS }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

/**
 * One source per GPU: its energy counter when the first answer has one (nvml-energy), else its power draw
 * (nvml-power). None, with the reason, when the command is missing or fails.
 */
export async function discoverNvidia(command: string): Promise<{ sources: SysfsSource[]; problem: string | null }> {
  let lines: GpuLine[];
  try {
    lines = parseNvidiaSmi(await run(command));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { sources: [], problem: code === 'ENOENT' ? `${command} not found (no NVIDIA driver here)` : `${command} failed: ${(err as Error).message}` };
  }
  // One run answers for every GPU: the sources of one sample all ask for it in the same tick (the sampler reads them
  // together), so they share the run in flight; once it settles, the next sample runs the command afresh. (Clearing
  // it a timer later instead let a sample that came quickly after another be answered with the old output.)
  let pending: Promise<GpuLine[]> | undefined;
  const sample = (): Promise<GpuLine[]> => {
    pending ??= run(command).then(parseNvidiaSmi).finally(() => (pending = undefined));
    return pending;
  };
  const sources = lines.map((gpu): SysfsSource => {
    const counter = gpu.energyJoules !== null;
    return {
      id: `nvidia:${gpu.index}`,
      method: counter ? 'nvml-energy' : 'nvml-power',
      label: `GPU ${gpu.index} ${gpu.name}`,
      read: async (): Promise<RawReading> => {
        const now = (await sample()).find((l) => l.index === gpu.index);
        if (!now) throw new Error(`nvidia-smi no longer lists GPU ${gpu.index}`);
        if (counter) {
          if (now.energyJoules === null) throw new Error(`GPU ${gpu.index} stopped reporting its energy counter`);
          // The counter is 64-bit millijoules: no wrap within a probe's life.
          return { kind: 'counter', joules: now.energyJoules, maxJoules: null };
        }
        if (now.watts === null) throw new Error(`GPU ${gpu.index} reports no power draw`);
        return { kind: 'power', watts: now.watts };
      },
    };
  });
  return { sources, problem: null };
}
