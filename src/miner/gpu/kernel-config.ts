// The tunable shapes of the GEMM kernel, and the WGSL each one compiles to.
import scalarSource from '../../../shaders/gemm-register-f32.wgsl?raw';
import vec4Source from '../../../shaders/gemm-register-vec4-f32.wgsl?raw';

/** scalar: any shape; vec4: 16-byte loads and stores, for K and N multiples of 4. */
export type KernelVariant = 'scalar' | 'vec4';

export const variantFor = (k: number, n: number): KernelVariant => (k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');

export interface KernelConfig {
  /** Threads per workgroup along columns (x) and rows (y). */
  wgX: number;
  wgY: number;
  /** Outputs per thread along rows and columns; multiples of 4. */
  tm: number;
  tn: number;
  /** Depth of one K step held in workgroup memory. */
  tileK: number;
}

export const configName = (c: KernelConfig): string => `wg${c.wgX}x${c.wgY}-t${c.tm}x${c.tn}-k${c.tileK}`;
export const tileRows = (c: KernelConfig): number => c.wgY * c.tm;
export const tileCols = (c: KernelConfig): number => c.wgX * c.tn;

/** Workgroup memory the kernel needs: two buffers of an A tile and a B tile, f32. */
export const workgroupBytes = (c: KernelConfig): number => 2 * c.tileK * (tileRows(c) + tileCols(c)) * 4;

/** What the autotuner tries; the first is the default before any tuning. */
export const CANDIDATES: readonly KernelConfig[] = [
  { wgX: 16, wgY: 16, tm: 4, tn: 4, tileK: 16 }, // 64 x 64 tile, 256 threads
  { wgX: 8, wgY: 8, tm: 8, tn: 8, tileK: 16 }, // 64 x 64 tile, 64 threads with 64 outputs each
  { wgX: 16, wgY: 16, tm: 8, tn: 8, tileK: 8 }, // 128 x 128 tile, 256 threads
  { wgX: 16, wgY: 8, tm: 4, tn: 8, tileK: 8 }, // 32 x 128 tile: suits short units
  { wgX: 8, wgY: 8, tm: 4, tn: 4, tileK: 32 }, // 32 x 32 tile: little work per thread
];

/** Checks that a config is well formed and fits the device; returns the reason it does not, or null. */
export function unfitReason(c: KernelConfig, limits: GPUSupportedLimits): string | null {
  if (c.tm % 4 !== 0 || c.tn % 4 !== 0 || c.tileK % 4 !== 0) return 'outputs per thread and the K step must be multiples of 4';
  const threads = c.wgX * c.wgY;
  if ((tileRows(c) * c.tileK) % threads !== 0 || (c.tileK * tileCols(c)) % threads !== 0) return 'tiles do not split evenly over threads';
  if (threads > limits.maxComputeInvocationsPerWorkgroup) return `${threads} threads exceed the device's ${limits.maxComputeInvocationsPerWorkgroup}`;
  if (c.wgX > limits.maxComputeWorkgroupSizeX || c.wgY > limits.maxComputeWorkgroupSizeY) return 'workgroup too wide';
  if (workgroupBytes(c) > limits.maxComputeWorkgroupStorageSize) {
    return `needs ${workgroupBytes(c)} bytes of workgroup memory; the device has ${limits.maxComputeWorkgroupStorageSize}`;
  }
  return null;
}

/** The kernel's WGSL with this config's constants in place of the defaults marked `tuned`. */
export function kernelSource(c: KernelConfig, variant: KernelVariant): string {
  const values: Record<string, number> = { WG_X: c.wgX, WG_Y: c.wgY, TM: c.tm, TN: c.tn, TILE_K: c.tileK };
  let source = variant === 'vec4' ? vec4Source : scalarSource;
  for (const [name, value] of Object.entries(values)) {
    const line = new RegExp(`^const ${name}: u32 = \\d+u;(.*// tuned.*)$`, 'm');
    if (!line.test(source)) throw new Error(`gemm kernel source has no tuned constant ${name}`);
    source = source.replace(line, `const ${name}: u32 = ${value}u;$1`);
  }
  return source;
}
