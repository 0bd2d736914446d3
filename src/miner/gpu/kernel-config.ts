// The tunable shapes of the GEMM kernels, and the WGSL each one compiles to.
import type { GemmPrecision as Precision } from '../../work/gemm/gemm.ts';
import directSource from '../../../shaders/gemm-direct-f32.wgsl?raw';
import directVec4Source from '../../../shaders/gemm-direct-vec4-f32.wgsl?raw';
import subgroupVec4Source from '../../../shaders/gemm-subgroup-vec4-f32.wgsl?raw';
import tiledSource from '../../../shaders/gemm-tiled-f32.wgsl?raw';
import tiledVec4Source from '../../../shaders/gemm-tiled-vec4-f32.wgsl?raw';

/** scalar: any shape; vec4: 16-byte loads and stores, for K and N multiples of 4. */
export type KernelVariant = 'scalar' | 'vec4';

export const variantFor = (k: number, n: number): KernelVariant => (k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');

/** How the operands are stored, as the protocol names it; f16 needs the device's `shader-f16`. C is f32 either way. */
export type { Precision };

/**
 * tiled: workgroup-memory tiles and one barrier per K step, the classic GPU kernel.
 * direct: each thread reads its rows of A and columns of B straight from storage; no workgroup memory, no
 * barriers (SwiftShader, where a barrier is expensive, runs it 3-4x faster than tiled).
 * subgroup: direct, with each A vector loaded once per quad of lanes and shared by subgroupShuffle; needs the
 * `subgroups` feature. Its scalar variant is the direct one.
 */
export type KernelFamily = 'tiled' | 'direct' | 'subgroup';

interface Blocking {
  /** Threads per workgroup along columns (x) and rows (y). */
  wgX: number;
  wgY: number;
  /** Outputs per thread along rows and columns. */
  tm: number;
  tn: number;
}

export interface TiledConfig extends Blocking {
  family: 'tiled';
  /** Depth of one K step held in workgroup memory. */
  tileK: number;
}

export interface DirectConfig extends Blocking {
  family: 'direct' | 'subgroup';
}

export type KernelConfig = TiledConfig | DirectConfig;

export const configName = (c: KernelConfig): string =>
  `${c.family}-wg${c.wgX}x${c.wgY}-t${c.tm}x${c.tn}${c.family === 'tiled' ? `-k${c.tileK}` : ''}`;
/** Rows and columns of C one workgroup computes. */
export const tileRows = (c: KernelConfig): number => c.wgY * c.tm;
export const tileCols = (c: KernelConfig): number => c.wgX * c.tn;

/** Workgroup memory the kernel needs: for tiled, two buffers of an A tile and a B tile, f32. */
export const workgroupBytes = (c: KernelConfig): number => (c.family === 'tiled' ? 2 * c.tileK * (tileRows(c) + tileCols(c)) * 4 : 0);

/**
 * What the autotuner tries; the first is the default before any tuning. Tiled kernels take about 1 s each to
 * compile on SwiftShader, direct ones under 0.1 s, so the list keeps few tiled ones.
 */
export const CANDIDATES: readonly KernelConfig[] = [
  // SwiftShader, measured side by side at 512^3 and 1024^3: 16x16 blocks 2.8-3.2 GFLOP/s, 8x8 2.1, 4x4 1.6;
  // tiled 0.1-0.2; 64x1 and 4x4 workgroups no better than 8x8. 16x32 ran 3.5 but compiles in 1.3 s (vec4) and
  // 3.1 s (scalar), too long for a tune.
  { family: 'direct', wgX: 8, wgY: 8, tm: 16, tn: 16 }, // 128 x 128 of C per workgroup
  { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 16 },
  { family: 'direct', wgX: 16, wgY: 16, tm: 4, tn: 4 }, // 256 threads of few registers, for GPUs that want many
  { family: 'tiled', wgX: 16, wgY: 16, tm: 4, tn: 4, tileK: 16 }, // 64 x 64 tile, 256 threads
  { family: 'tiled', wgX: 8, wgY: 8, tm: 8, tn: 8, tileK: 16 }, // 64 x 64 tile, 64 threads with 64 outputs each
  { family: 'subgroup', wgX: 8, wgY: 8, tm: 16, tn: 16 }, // only where the device has `subgroups`
  { family: 'subgroup', wgX: 8, wgY: 8, tm: 8, tn: 16 },
];

/**
 * The config an f16 unit runs with: only the direct family has f16 kernels, so a tiled or subgroup config runs
 * its blocking (threads and outputs per thread, which fit the device as they are) as a direct kernel.
 */
export const f16Config = (c: KernelConfig): DirectConfig =>
  c.family === 'direct' ? c : { family: 'direct', wgX: c.wgX, wgY: c.wgY, tm: c.tm, tn: c.tn };

/** A config GemmKernel runs instead of the tuned one for products of at most `maxRows` rows (GEMV-like). */
export interface SmallMConfig {
  maxRows: number;
  config: KernelConfig;
}

/**
 * By ascending maxRows; the first that fits M wins. A tuned tile of 32-64 rows would compute 63 wasted rows for
 * every real one when M = 1. SwiftShader, measured side by side: at 1x4096x4096, one row per thread ran 1.5x
 * faster than four, and 16 columns faster than 32 or 64; at 8x2048x2048, four rows ran 3x faster than one.
 * Sixteen threads of 16 columns: 16 workgroups across N = 4096.
 */
export const SMALL_M_CONFIGS: readonly SmallMConfig[] = [
  { maxRows: 1, config: { family: 'direct', wgX: 16, wgY: 1, tm: 1, tn: 16 } },
  { maxRows: 8, config: { family: 'direct', wgX: 16, wgY: 1, tm: 4, tn: 16 } },
];

/** What unfitReason needs of a device: its limits and features. */
export interface DeviceCaps {
  limits: GPUSupportedLimits;
  features: ReadonlySet<string>;
}

/** Checks that a config is well formed and fits the device; returns the reason it does not, or null. */
export function unfitReason(c: KernelConfig, device: DeviceCaps): string | null {
  const { limits } = device;
  if (c.tm < 1 || c.tn % 4 !== 0) return 'outputs per thread: at least one row, columns a multiple of 4';
  const threads = c.wgX * c.wgY;
  if (threads > limits.maxComputeInvocationsPerWorkgroup) return `${threads} threads exceed the device's ${limits.maxComputeInvocationsPerWorkgroup}`;
  if (c.wgX > limits.maxComputeWorkgroupSizeX || c.wgY > limits.maxComputeWorkgroupSizeY) return 'workgroup too wide';
  if (c.family === 'tiled') {
    if (c.tm % 4 !== 0 || c.tileK % 4 !== 0) return 'tiled: rows per thread and the K step must be multiples of 4';
    if ((tileRows(c) * c.tileK) % threads !== 0 || (c.tileK * tileCols(c)) % threads !== 0) return 'tiles do not split evenly over threads';
    if (workgroupBytes(c) > limits.maxComputeWorkgroupStorageSize) {
      return `needs ${workgroupBytes(c)} bytes of workgroup memory; the device has ${limits.maxComputeWorkgroupStorageSize}`;
    }
  }
  if (c.family === 'subgroup') {
    if (!device.features.has('subgroups')) return 'the device has no subgroups feature';
    if (c.wgX % 4 !== 0 || c.tm % 4 !== 0) return 'subgroup: threads along x and rows per thread must be multiples of 4';
  }
  return null;
}

const OPERAND_ALIAS = /^alias Operand = f32;(.*\/\/ precision.*)$/m;

/**
 * The WGSL file of a family's variant at a precision; `label` names it for error messages and pipelines. f16 is the
 * direct kernel's with f16 enabled and its `Operand` alias, marked `precision`, set to f16.
 */
function sourceOf(c: KernelConfig, variant: KernelVariant, precision: Precision): { label: string; code: string } {
  if (precision === 'f16') {
    if (c.family !== 'direct') throw new Error(`${configName(c)}: only direct kernels take f16 operands (see f16Config)`);
    const { label, code } = sourceOf(c, variant, 'f32');
    if (!OPERAND_ALIAS.test(code)) throw new Error(`${label} has no Operand alias marked precision`);
    return { label: `${label} f16-operands`, code: `enable f16;\n${code.replace(OPERAND_ALIAS, 'alias Operand = f16;$1')}` };
  }
  if (c.family === 'tiled') return variant === 'vec4' ? { label: 'gemm-tiled-vec4-f32', code: tiledVec4Source } : { label: 'gemm-tiled-f32', code: tiledSource };
  if (variant === 'scalar') return { label: 'gemm-direct-f32', code: directSource };
  return c.family === 'subgroup' ? { label: 'gemm-subgroup-vec4-f32', code: subgroupVec4Source } : { label: 'gemm-direct-vec4-f32', code: directVec4Source };
}

/** The kernel's WGSL with this config's constants in place of the defaults marked `tuned`, and its file's name. */
export function kernelSource(c: KernelConfig, variant: KernelVariant, precision: Precision = 'f32'): { label: string; code: string } {
  const values: Record<string, number> = { WG_X: c.wgX, WG_Y: c.wgY, TM: c.tm, TN: c.tn };
  if (c.family === 'tiled') values.TILE_K = c.tileK;
  const { label, code } = sourceOf(c, variant, precision);
  let source = code;
  for (const [name, value] of Object.entries(values)) {
    const line = new RegExp(`^const ${name}: u32 = \\d+u;(.*// tuned.*)$`, 'm');
    if (!line.test(source)) throw new Error(`${label} has no tuned constant ${name}`);
    source = source.replace(line, `const ${name}: u32 = ${value}u;$1`);
  }
  return { label, code: unrollBlocks(source, { TM: c.tm, TM4: Math.floor(c.tm / 4), TN: c.tn, TN4: c.tn / 4 }, label) };
}

const UNROLL_START = /^\s*\/\/unroll (\w+) < (\w+)\s*$/;
const UNROLL_END = /^\s*\/\/end (\w+)\s*$/;

/**
 * Repeats each block between `//unroll v < BOUND` and `//end v` bounds[BOUND] times, with {v} replaced by
 * 0, 1, ...; blocks nest. A source without such blocks comes back unchanged.
 */
export function unrollBlocks(source: string, bounds: Record<string, number>, label = 'kernel'): string {
  const lines = source.split('\n');
  const expand = (from: number, to: number): string[] => {
    const out: string[] = [];
    for (let i = from; i < to; i++) {
      const start = UNROLL_START.exec(lines[i]);
      if (!start) {
        if (UNROLL_END.test(lines[i])) throw new Error(`${label}: unmatched ${lines[i].trim()}`);
        out.push(lines[i]);
        continue;
      }
      const [, name, boundName] = start;
      const count = bounds[boundName];
      if (count === undefined) throw new Error(`${label}: no bound ${boundName} to unroll ${name} over`);
      let depth = 1;
      let end = i + 1;
      for (; end < to; end++) {
        if (UNROLL_START.test(lines[end])) depth++;
        const closing = UNROLL_END.exec(lines[end]);
        if (closing && --depth === 0) {
          if (closing[1] !== name) throw new Error(`${label}: //unroll ${name} closed by //end ${closing[1]}`);
          break;
        }
      }
      if (end >= to) throw new Error(`${label}: //unroll ${name} is never closed`);
      const body = expand(i + 1, end);
      for (let index = 0; index < count; index++) out.push(...body.map((line) => line.replaceAll(`{${name}}`, String(index))));
      i = end;
    }
    return out;
  };
  return expand(0, lines.length).join('\n');
}
