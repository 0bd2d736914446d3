// The bench's results as data (what bench/results/gemm.json holds) and as the printed tables.
import type { CheckResult, EndToEndResult, EndToEndUnit, Environment, ImplInfo, ImplName, RunTiming, VerificationCost } from './bench-api.ts';
import { IMPLS } from './bench-api.ts';

/** Issue 4's targets, measured on one adapter. */
export const TARGET_RATIO_VS_WEBGPU_PEERS = 1.5;
export const TARGET_RATIO_SHAPES = ['1024', '2048'];
export const TARGET_MINING_OVER_KERNEL = 0.85;
export const TARGET_FREIVALDS_OVER_COMPUTE = 0.02;

export type ImplOutcome =
  | {
      ok: true;
      info: ImplInfo;
      warmups: RunTiming[];
      runs: RunTiming[];
      medianSeconds: number;
      gflops: number;
      medianWallSeconds: number;
      wallGflops: number;
      check: CheckResult;
    }
  | { ok: false; info?: ImplInfo; stage: 'prepare' | 'run' | 'check'; error: string; warmups: RunTiming[]; runs: RunTiming[] };

export interface ShapeResult {
  label: string;
  shape: { m: number; k: number; n: number };
  flops: number;
  impls: Partial<Record<ImplName, ImplOutcome>>;
  /** ours' GFLOP/s over each peer's, where both ran. */
  oursOver: Partial<Record<ImplName, number>>;
  /** Freivalds on the whole product, against ours' median kernel time. */
  verification?: (VerificationCost & { overOursCompute: number; impl: ImplName }) | { error: string };
}

export interface TargetResult {
  name: string;
  value: number | null;
  target: string;
  met: boolean | null;
  note?: string;
}

export interface BenchReport {
  benchmark: 'gemm';
  createdAt: string;
  command: string;
  settings: Record<string, unknown>;
  host: Record<string, unknown>;
  browser: { version: string; executable: string; args: string[] };
  environment: Environment;
  timingIncludes: Partial<Record<ImplName, string>>;
  notes: string[];
  shapes: ShapeResult[];
  endToEnd: (EndToEndResult & { oursKernelAtSameSizeGflops?: number }) | { error: string } | null;
  targets: TargetResult[];
  pageMessages: string[];
  durationSeconds: number;
}

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const gflopsCell = (o: ImplOutcome | undefined): string => (!o ? '-' : o.ok ? fixed(o.gflops, 3) : 'FAIL');
const errCell = (o: ImplOutcome | undefined): string => (!o ? '-' : o.ok ? o.check.maxRelError.toExponential(1) : 'FAIL');

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatTables(report: BenchReport, impls: readonly ImplName[]): string {
  const peers = impls.filter((i) => i !== 'ours');
  const speed = table(
    ['shape MxKxN', ...impls.map((i) => `${i}`), ...(impls.includes('ours') ? peers.map((p) => `ours/${p}`) : []), 'verify/ours'],
    report.shapes.map((s) => [
      s.label,
      ...impls.map((i) => gflopsCell(s.impls[i])),
      ...(impls.includes('ours') ? peers.map((p) => (s.oursOver[p] === undefined ? '-' : `${fixed(s.oursOver[p] ?? NaN, 2)}x`)) : []),
      s.verification && 'overOursCompute' in s.verification && Number.isFinite(s.verification.overOursCompute)
        ? `${fixed(100 * s.verification.overOursCompute, 2)}%`
        : '-',
    ]),
  );
  const errors = table(
    ['shape MxKxN', ...impls.map((i) => `${i}`), 'checked'],
    report.shapes.map((s) => {
      const checked = Object.values(s.impls).find((o) => o?.ok);
      const how = checked?.ok ? (checked.check.reference === 'full' ? 'all of C' : `${checked.check.checkedRows} rows of ${s.shape.m}`) : '-';
      return [s.label, ...impls.map((i) => errCell(s.impls[i])), how];
    }),
  );
  const wall = table(
    ['shape MxKxN', ...impls.map((i) => `${i}`)],
    report.shapes.map((s) => [s.label, ...impls.map((i) => {
      const o = s.impls[i];
      return !o ? '-' : o.ok ? fixed(o.wallGflops, 3) : 'FAIL';
    })]),
  );
  return [
    'GFLOP/s (median of timed runs; "seconds" as defined below), ours/peer ratios, Freivalds on the whole product / ours compute:',
    speed,
    '',
    'Max relative error vs the f64 CPU reference (max |C - ref| / max |ref|):',
    errors,
    '',
    'GFLOP/s including read-back of C to JavaScript ("wallSeconds"):',
    wall,
  ].join('\n');
}

export function formatFailures(report: BenchReport): string[] {
  const lines: string[] = [];
  for (const s of report.shapes) {
    for (const impl of IMPLS) {
      const o = s.impls[impl];
      if (o && !o.ok) lines.push(`  ${s.label} ${impl}: failed at ${o.stage}: ${o.error}`);
    }
  }
  return lines;
}

export function formatEndToEnd(e2e: BenchReport['endToEnd']): string[] {
  if (!e2e) return ['End-to-end: not run (--e2e=0).'];
  if ('error' in e2e) return [`End-to-end: FAILED: ${e2e.error}`];
  const { units } = e2e;
  const n = units.length;
  const sum = (f: (u: EndToEndUnit) => number) => units.reduce((s, u) => s + f(u), 0);
  return [
    `End-to-end mining (job ${e2e.size}^3 = ${n} units of ${e2e.unitTile}x${e2e.size}x${e2e.unitTile}, one at a time: lease encode+frame -> reassemble+parse -> GpuClient worker -> result encode+frame -> reassemble+parse -> Freivalds):`,
    `  mining rate ${fixed(e2e.miningGflops, 3)} GFLOP/s over ${fixed(e2e.wallSeconds, 2)} s wall; raw kernel ${fixed(e2e.kernelGflops, 3)} GFLOP/s (sum of the worker's gpuSeconds, ${fixed(e2e.gpuSeconds, 2)} s)`,
    `  mining / raw kernel = ${fixed(100 * e2e.miningOverKernel, 1)}% (target >= ${100 * TARGET_MINING_OVER_KERNEL}%)`
      + (e2e.oursKernelAtSameSizeGflops ? `; mining / ours at ${e2e.size} in the table = ${fixed((100 * e2e.miningGflops) / e2e.oursKernelAtSameSizeGflops, 1)}%` : ''),
    `  where the time went: worker round trips ${fixed(sum((u) => u.workerSeconds), 2)} s (of which GPU ${fixed(e2e.gpuSeconds, 2)} s), coordinator side ${fixed(sum((u) => u.coordinatorSeconds), 2)} s (of which Freivalds ${fixed(e2e.freivaldsSeconds, 2)} s), miner framing/parsing ${fixed(sum((u) => u.minerSeconds), 2)} s`,
    `  Freivalds / job compute = ${fixed(100 * e2e.freivaldsOverCompute, 2)}% (target <= ${100 * TARGET_FREIVALDS_OVER_COMPUTE}%); all units accepted: ${e2e.allAccepted}; assembled C max rel error ${e2e.maxRelError.toExponential(1)}`,
  ];
}

export function formatTargets(targets: TargetResult[]): string[] {
  return targets.map((t) => {
    const verdict = t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS';
    return `  [${verdict}] ${t.name}: ${t.value === null ? '-' : fixed(t.value, 3)} (target ${t.target})${t.note ? `; ${t.note}` : ''}`;
  });
}
