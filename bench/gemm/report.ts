// The bench's results as data (what bench/results/gemm.json holds) and as the printed tables.
import type { CheckResult, EndToEndResult, EndToEndUnit, Environment, ImplInfo, ImplName, RunTiming, VerificationCost } from './bench-api.ts';
import { IMPLS, shapeFlops } from './bench-api.ts';
import { median } from './stats.ts';

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
  /** One result per mode; the targets use the pipelined run, the mining loop's own way. */
  endToEnd: { runs: EndToEndResult[]; oursKernelAtSameSizeGflops?: number } | { error: string } | null;
  targets: TargetResult[];
  pageMessages: string[];
  durationSeconds: number;
}

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
/** Three significant figures, however small: 1x4096x4096 on SwiftShader runs at thousandths of a GFLOP/s. */
const rate = (x: number): string => (!Number.isFinite(x) ? String(x) : x >= 100 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(3));
const gflopsCell = (o: ImplOutcome | undefined): string => (!o ? '-' : o.ok ? rate(o.gflops) : 'FAIL');
const errCell = (o: ImplOutcome | undefined): string => (!o ? '-' : o.ok ? o.check.maxRelError.toExponential(1) : 'FAIL');

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatTables(report: BenchReport, impls: readonly ImplName[]): string {
  const peers = impls.filter((i) => i !== 'ours' && i !== 'ours-f16');
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
      return !o ? '-' : o.ok ? rate(o.wallGflops) : 'FAIL';
    })]),
  );
  const clock = report.shapes.flatMap((s) => {
    const o = s.impls.ours;
    const seconds = o?.ok ? o.runs.map((r) => r.gpuClockSeconds).filter((x) => x !== undefined) : [];
    if (!o?.ok || seconds.length === 0) return [];
    const clockSeconds = median(seconds);
    return [[s.label, rate(shapeFlops(s.shape) / clockSeconds / 1e9), rate(o.gflops), `${fixed((100 * clockSeconds) / o.medianSeconds, 1)}%`]];
  });
  const clockLines = clock.length === 0 ? [] : [
    '',
    'ours on the GPU\'s clock (timestamp queries, median), against its submit-to-completion figure above:',
    table(['shape MxKxN', 'GPU clock', 'submit->done', 'clock/submit time'], clock),
  ];
  return [
    'GFLOP/s (median of timed runs; "seconds" as defined below), ours/peer ratios, Freivalds on the whole product / ours compute:',
    speed,
    '',
    'Max relative error vs the f64 CPU reference (max |C - ref| / max |ref|):',
    errors,
    '',
    'GFLOP/s including read-back of C to JavaScript ("wallSeconds"):',
    wall,
    ...clockLines,
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
  const lines: string[] = [];
  for (const run of e2e.runs) {
    const { units } = run;
    const sum = (f: (u: EndToEndUnit) => number) => units.reduce((s, u) => s + f(u), 0);
    lines.push(
      `End-to-end mining, ${run.mode}: job ${run.size}^3 = ${units.length} units of ${run.unitTile}x${run.size}x${run.unitTile} `
        + `(lease encode+frame -> reassemble+parse -> GpuClient worker -> result encode+frame -> reassemble+parse -> Freivalds):`,
      `  mining rate ${rate(run.miningGflops)} GFLOP/s over ${fixed(run.wallSeconds, 2)} s wall; raw kernel ${rate(run.kernelGflops)} GFLOP/s `
        + `(sum of the worker's gpuSeconds, ${fixed(run.gpuSeconds, 2)} s; submit to completion ${fixed(run.submitSeconds, 2)} s)`,
      `  mining / raw kernel = ${fixed(100 * run.miningOverKernel, 1)}% (target >= ${100 * TARGET_MINING_OVER_KERNEL}%); `
        + `against submit-to-completion time ${fixed(100 * run.miningOverSubmit, 1)}%`
        + (e2e.oursKernelAtSameSizeGflops ? `; mining / ours at ${run.size} in the table = ${fixed((100 * run.miningGflops) / e2e.oursKernelAtSameSizeGflops, 1)}%` : ''),
      `  time: worker round trips ${fixed(sum((u) => u.workerSeconds), 2)} s (GPU ${fixed(run.gpuSeconds, 2)} s), `
        + `coordinator side ${fixed(sum((u) => u.coordinatorSeconds), 2)} s (Freivalds ${fixed(run.freivaldsSeconds, 2)} s), `
        + `miner framing/parsing ${fixed(sum((u) => u.minerSeconds), 2)} s; lease ${fixed(units[0].leaseBytes / 2 ** 20, 2)} MiB, result ${fixed(units[0].resultBytes / 2 ** 20, 2)} MiB`,
      `  Freivalds / job compute = ${fixed(100 * run.freivaldsOverCompute, 2)}% (target <= ${100 * TARGET_FREIVALDS_OVER_COMPUTE}%); `
        + `all units accepted: ${run.allAccepted}; assembled C max rel error ${run.maxRelError.toExponential(1)}`,
    );
  }
  return lines;
}

export function formatTargets(targets: TargetResult[]): string[] {
  return targets.map((t) => {
    const verdict = t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS';
    return `  [${verdict}] ${t.name}: ${t.value === null ? '-' : fixed(t.value, 3)} (target ${t.target})${t.note ? `; ${t.note}` : ''}`;
  });
}
