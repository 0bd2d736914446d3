// `npm run bench:verify`: how far Freivalds' check puts honest f32 products from cheaper or incomplete ones, and what
// it costs per unit (issue 19).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { elementSigma, freivaldsCheck, ROW_TAIL, type FreivaldsCheck, type Product } from '../src/work/gemm/freivalds.ts';
import { EXACT_MAX_DEPTH, spotGrid } from '../src/work/gemm/spot-checks.ts';
import { mulberry32, seededBytes } from '../tests/helpers/random.ts';
import { CHEATS, DISTRIBUTIONS, HONEST_ORDERS, operands, product, type Cheat, type Distribution } from '../tests/unit/work/products.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_KS = [1, 4, 16, 64, 256, 1024, 4096, 16384];
/** Random vectors per product: honest figures are the largest over them, cheats' the smallest. */
const DEFAULT_SEEDS = 4;
/** Precision cheats and honest orders: rows x cols of C. A unit's 256 rows; fewer (--rows) leave the aggregate test less to go on. */
const DEFAULT_ROWS = 256;
const DEFAULT_COLS = 64;
/** Column and element cheats: the issue's 256 columns, 32 rows. */
const WIDE_ROWS = 32;
const WIDE_COLS = 256;
/** Cost: one unit of UNIT x K x UNIT, the coordinator's tile. */
const UNIT = 256;
/** Every element is recomputed up to EXACT_MAX_DEPTH (256); 320 is the first depth timed above it. */
const DEFAULT_COST_KS = [16, 64, 256, 320, 1024, 4096, 16384];
const DEFAULT_COST_REPS = 41;
/** Thin results: jobs of this many rows leave the row residuals few (one unit's rows are the job's). */
const DEFAULT_THIN_ROWS = [1, 2, 8];
/** Thin units timed: rows x K x UNIT, at the recorded rate of our kernel on its GEMV shape (memory-bound, as these are). */
const THIN_COST_ROWS = [1, 8];
/** A small result, every element recomputed: one element off by PROBE_MULTIPLE its bound at each place. */
const SMALL_ROWS = 1;
const DEFAULT_OUT = 'bench/results/verify.json';

const STRUCTURAL_CHEATS = ['skip-small-columns', 'only-large-column', 'element-24%-of-row-rms'] as const;
const ALL_CHEATS = [...CHEATS, ...STRUCTURAL_CHEATS] as const;
type CheatName = (typeof ALL_CHEATS)[number];
/**
 * Elements, each off by 100 times its own bound, checked per K and distribution for the smallest multiple caught, on
 * a full UNIT x UNIT unit: a row of 256 hides more than the 32x256 of the column cheats.
 */
const ELEMENT_PROBES = 64;
/** The size of the probe's error, in multiples of the element's own bound (ROW_TAIL sigma of the model). */
const PROBE_MULTIPLE = 100;

const USAGE = `npm run bench:verify -- [options]
  --ks=LIST         depths K, default ${DEFAULT_KS.join(',')}
  --dists=LIST      operand distributions, default ${DISTRIBUTIONS.join(',')}
  --seeds=N         random vectors per product, default ${DEFAULT_SEEDS}
  --rows=N --cols=N C's shape for honest orders and precision cheats, default ${DEFAULT_ROWS}x${DEFAULT_COLS}
  --cost-ks=LIST    depths of the ${UNIT}xKx${UNIT} units timed, default ${DEFAULT_COST_KS.join(',')}
  --cost-reps=N     timed checks per unit, default ${DEFAULT_COST_REPS} (median reported)
  --thin-rows=LIST  rows of the thin results (x --cols) checked beside the full ones, default ${DEFAULT_THIN_ROWS.join(',')}
  --out=PATH        JSON output, default ${DEFAULT_OUT} (bench/results/*.scratch*.json are git-ignored)`;

interface Options {
  ks: number[];
  dists: Distribution[];
  seeds: number;
  rows: number;
  cols: number;
  costKs: number[];
  costReps: number;
  thinRows: number[];
  out: string;
}

function parseOptions(argv: string[]): Options {
  const values = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match || !['ks', 'dists', 'seeds', 'rows', 'cols', 'cost-ks', 'cost-reps', 'thin-rows', 'out'].includes(match[1])) throw new Error(`unknown argument ${arg}\n${USAGE}`);
    values.set(match[1], match[2]);
  }
  const ints = (name: string, fallback: number[]): number[] => {
    const list = values.get(name)?.split(',').map(Number) ?? fallback;
    if (!list.every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`--${name} takes positive integers`);
    return list;
  };
  const dists = (values.get('dists')?.split(',') ?? [...DISTRIBUTIONS]).map((name) => {
    const found = DISTRIBUTIONS.find((d) => d === name);
    if (!found) throw new Error(`unknown distribution ${name}; known: ${DISTRIBUTIONS.join(', ')}`);
    return found;
  });
  return {
    ks: ints('ks', DEFAULT_KS),
    dists,
    seeds: ints('seeds', [DEFAULT_SEEDS])[0],
    rows: ints('rows', [DEFAULT_ROWS])[0],
    cols: ints('cols', [DEFAULT_COLS])[0],
    costKs: ints('cost-ks', DEFAULT_COST_KS),
    costReps: ints('cost-reps', [DEFAULT_COST_REPS])[0],
    thinRows: ints('thin-rows', DEFAULT_THIN_ROWS),
    out: values.get('out') ?? DEFAULT_OUT,
  };
}

/** The larger of a check's two fractions, and which test it came from: above 1 is a rejection. */
interface Score {
  score: number;
  rowFraction: number;
  aggregateFraction: number;
  elementFraction: number;
  spotAggregateFraction: number;
  test: 'row' | 'aggregate' | 'element' | 'spots' | 'non-finite' | 'shape';
}

function score(check: FreivaldsCheck): Score {
  const { rowFraction, aggregateFraction, elementFraction, spotAggregateFraction, verdict } = check;
  const fractions = { rowFraction, aggregateFraction, elementFraction, spotAggregateFraction };
  if (!verdict.ok && verdict.error.code !== 'verification-failed') {
    return { score: Infinity, ...fractions, test: verdict.error.code === 'non-finite' ? 'non-finite' : 'shape' };
  }
  const tests = [['row', rowFraction], ['aggregate', aggregateFraction], ['element', elementFraction], ['spots', spotAggregateFraction]] as const;
  const [test, value] = tests.reduce((best, t) => (t[1] > best[1] ? t : best));
  return { score: value, ...fractions, test };
}

/** Checks a product with `seeds` random vectors: all the scores. */
function scores(p: Product, seeds: number, salt: number): Score[] {
  return Array.from({ length: seeds }, (_, seed) => score(freivaldsCheck(p, seededBytes(salt * 1000 + seed))));
}

const largest = (list: Score[]): Score => list.reduce((best, s) => (s.score > best.score ? s : best));
const smallest = (list: Score[]): Score => list.reduce((best, s) => (s.score < best.score ? s : best));

interface DepthResult {
  k: number;
  distribution: Distribution;
  /** Per honest order (and the structural cheats' honest products): the largest score over the random vectors. */
  honest: Record<string, Score>;
  honestMax: Score;
  /** Per cheat: the smallest score over the random vectors. */
  cheats: Record<CheatName, Score>;
  /** Smallest cheat score over the largest honest score: how many times apart the closest pair is. */
  margin: number;
  /**
   * One element of a UNIT x UNIT unit off by PROBE_MULTIPLE times its own bound, at ELEMENT_PROBES random places (rows
   * and columns scaled 10^U[-2, 2]): the smallest score, and the multiple of its own bound at which that element would
   * just be caught (PROBE_MULTIPLE / score: the residual grows linearly with the error once it dominates).
   * rowsAloneCaughtAboveMultiple: the same from the row tests alone (row and aggregate fractions), what the check
   * gives an element that its spot checks do not recompute.
   */
  elementProbe: Score & { caughtAboveMultiple: number; rowsAloneCaughtAboveMultiple: number };
  /** The chance that one check recomputes a given element of the probes' unit (spot-checks.ts): 1 when it recomputes all. */
  elementProbeSpotShare: number;
  /** Results of a few rows (x cols): honest max and each precision cheat's smallest score, as above. */
  thin: { rows: number; honestMax: Score; cheats: Record<Cheat, Score>; margin: number }[];
  /**
   * A SMALL_ROWS x cols result (every element recomputed), rows and columns scaled as for elementProbe: each element in
   * turn off by PROBE_MULTIPLE times its own bound; the smallest score, and the multiple it gives as above.
   */
  smallElementProbe: Score & { caughtAboveMultiple: number };
}

function benchDepth(k: number, distribution: Distribution, options: Options): DepthResult {
  const { rows, cols, seeds } = options;
  const salt = k * 10 + DISTRIBUTIONS.indexOf(distribution);
  const a = operands(distribution, rows * k, salt + 1);
  const b = operands(distribution, k * cols, salt + 2);
  const honest: Record<string, Score> = {};
  for (const order of HONEST_ORDERS) honest[order] = largest(scores({ a, b, c: product(a, b, rows, k, cols, order), rows, depth: k, cols }, seeds, salt));
  const cheats = {} as Record<CheatName, Score>;
  for (const cheat of CHEATS) cheats[cheat] = smallest(scores({ a, b, c: product(a, b, rows, k, cols, cheat), rows, depth: k, cols }, seeds, salt));

  // 256 columns, for the issue's column and element cheats.
  const next = mulberry32(salt + 3);
  const wideA = operands(distribution, WIDE_ROWS * k, salt + 4);
  const wideB = operands(distribution, k * WIDE_COLS, salt + 5);
  const wide = (bScale: (column: number) => number, aScale: (row: number) => number = () => 1): Product => {
    const a2 = wideA.map((v, at) => v * aScale(Math.floor(at / k)));
    const b2 = wideB.map((v, at) => v * bScale(at % WIDE_COLS));
    return { a: a2, b: b2, c: product(a2, b2, WIDE_ROWS, k, WIDE_COLS, 'sequential-fma'), rows: WIDE_ROWS, depth: k, cols: WIDE_COLS };
  };
  const withC = (p: Product, c: Float32Array): Product => ({ ...p, c });

  // Rows and columns with scales 10^U[-2, 2]: the 65 smallest columns zeroed; one element off by 100x its own 8 sigma.
  const rowScale = Array.from({ length: WIDE_ROWS }, () => 10 ** (next() * 4 - 2));
  const colScale = Array.from({ length: WIDE_COLS }, () => 10 ** (next() * 4 - 2));
  const scaled = wide((j) => colScale[j], (i) => rowScale[i]);
  honest['scaled rows and columns'] = largest(scores(scaled, seeds, salt));
  const smallestColumns = new Set([...colScale.keys()].sort((x, y) => colScale[x] - colScale[y]).slice(0, 65));
  cheats['skip-small-columns'] = smallest(scores(withC(scaled, scaled.c.map((v, at) => (smallestColumns.has(at % WIDE_COLS) ? 0 : v))), seeds, salt));
  const elementProbe = unitElementProbe(k, distribution, seeds, salt);

  // One column 10^4 times the others: all the others zeroed.
  const LARGE = 100;
  const oneLarge = wide((j) => (j === LARGE ? 1e4 : 1));
  honest['one column 10^4 times the rest'] = largest(scores(oneLarge, seeds, salt));
  cheats['only-large-column'] = smallest(scores(withC(oneLarge, oneLarge.c.map((v, at) => (at % WIDE_COLS === LARGE ? v : 0))), seeds, salt));

  // Plain operands: one element off by 24% of its row's RMS.
  const plain = wide(() => 1);
  honest['256 columns'] = largest(scores(plain, seeds, salt));
  cheats['element-24%-of-row-rms'] = smallest(Array.from({ length: seeds }, (_, seed) => {
    // A row of zeros (ReLU-like operands at K = 1) has no RMS to be off by: another row is drawn.
    let i = 0;
    let squares = 0;
    while (squares === 0) {
      i = Math.floor(next() * WIDE_ROWS);
      squares = 0;
      for (let jj = 0; jj < WIDE_COLS; jj++) squares += plain.c[i * WIDE_COLS + jj] ** 2;
    }
    const j = Math.floor(next() * WIDE_COLS);
    const c = plain.c.slice();
    c[i * WIDE_COLS + j] += 0.24 * Math.sqrt(squares / WIDE_COLS);
    return score(freivaldsCheck(withC(plain, c), seededBytes(salt * 1000 + seed)));
  }));

  const honestMax = largest(Object.values(honest));
  const margin = Math.min(...Object.values(cheats).map((s) => s.score)) / honestMax.score;

  // Thin results: the job's few rows are the unit's.
  const thin = options.thinRows.map((thinRows) => {
    const ta = operands(distribution, thinRows * k, salt + 6 + thinRows);
    const tb = operands(distribution, k * cols, salt + 7);
    const honestScores = HONEST_ORDERS.map((order) => largest(scores({ a: ta, b: tb, c: product(ta, tb, thinRows, k, cols, order), rows: thinRows, depth: k, cols }, seeds, salt)));
    const thinCheats = {} as Record<Cheat, Score>;
    for (const cheat of CHEATS) thinCheats[cheat] = smallest(scores({ a: ta, b: tb, c: product(ta, tb, thinRows, k, cols, cheat), rows: thinRows, depth: k, cols }, seeds, salt));
    const thinMax = largest(honestScores);
    return { rows: thinRows, honestMax: thinMax, cheats: thinCheats, margin: Math.min(...Object.values(thinCheats).map((t) => t.score)) / thinMax.score };
  });

  // A small result: every element, each in turn off by PROBE_MULTIPLE times its own bound.
  const sa = wideA.subarray(0, SMALL_ROWS * k).map((v) => v * rowScale[0]);
  const sb = operands(distribution, k * cols, salt + 8).map((v, at) => v * colScale[at % cols]);
  const small: Product = { a: sa, b: sb, c: product(sa, sb, SMALL_ROWS, k, cols, 'sequential'), rows: SMALL_ROWS, depth: k, cols };
  // An element whose products are all zero (ReLU-like operands at small K) has no bound to be a multiple of: skipped.
  const smallProbe = smallest(Array.from({ length: SMALL_ROWS * cols }, (_, at) => at).flatMap((at) => {
    const sigma = elementSigma(small, Math.floor(at / cols), at % cols);
    if (sigma === 0) return [];
    const c = small.c.slice();
    c[at] += (at % 2 ? -1 : 1) * PROBE_MULTIPLE * ROW_TAIL * sigma;
    return [score(freivaldsCheck(withC(small, c), seededBytes(salt * 1000 + (at % seeds))))];
  }));
  const grid = spotGrid(UNIT, UNIT, k);
  return {
    k, distribution, honest, honestMax, cheats, margin, elementProbe, elementProbeSpotShare: (grid.rows * grid.cols) / (UNIT * UNIT), thin,
    smallElementProbe: { ...smallProbe, caughtAboveMultiple: PROBE_MULTIPLE / smallProbe.score },
  };
}

/**
 * A UNIT x UNIT unit with rows and columns scaled 10^U[-2, 2], each of ELEMENT_PROBES random elements in turn off by
 * PROBE_MULTIPLE times its own bound: the smallest score of the whole check and of its row tests alone.
 */
function unitElementProbe(k: number, distribution: Distribution, seeds: number, salt: number): DepthResult['elementProbe'] {
  const next = mulberry32(salt + 9);
  const rowScale = Array.from({ length: UNIT }, () => 10 ** (next() * 4 - 2));
  const colScale = Array.from({ length: UNIT }, () => 10 ** (next() * 4 - 2));
  const a = operands(distribution, UNIT * k, salt + 10).map((v, at) => v * rowScale[Math.floor(at / k)]);
  const b = operands(distribution, k * UNIT, salt + 11).map((v, at) => v * colScale[at % UNIT]);
  const p: Product = { a, b, c: product(a, b, UNIT, k, UNIT, 'sequential-fma'), rows: UNIT, depth: k, cols: UNIT };
  const probes: Score[] = [];
  let rowsAlone = Infinity;
  while (probes.length < ELEMENT_PROBES) {
    const i = Math.floor(next() * UNIT);
    const j = Math.floor(next() * UNIT);
    const sigma = elementSigma(p, i, j);
    if (sigma === 0) continue; // all its products zero (ReLU-like at small K): off by anything is off beyond its bound
    const c = p.c.slice();
    c[i * UNIT + j] += (next() < 0.5 ? -1 : 1) * PROBE_MULTIPLE * ROW_TAIL * sigma;
    const check = freivaldsCheck({ ...p, c }, seededBytes(salt * 1000 + (probes.length % seeds)));
    probes.push(score(check));
    rowsAlone = Math.min(rowsAlone, Math.max(check.rowFraction, check.aggregateFraction));
  }
  const probe = smallest(probes);
  return { ...probe, caughtAboveMultiple: PROBE_MULTIPLE / probe.score, rowsAloneCaughtAboveMultiple: PROBE_MULTIPLE / rowsAlone };
}

interface CostResult {
  k: number;
  shape: string;
  verifySeconds: number;
  runs: number[];
  /** Operand and result elements read, and seconds per million of them. */
  elements: number;
  secondsPerMegaElement: number;
  /** The unit's 2 M K N ops at the recorded bench:gemm rate of our kernel on SwiftShader (bench/results/gemm.json). */
  computeSecondsAtRecordedRate: number | null;
  verifyOverCompute: number | null;
}

/** C = A·B summed in f32 with single roundings, row by row: fast enough for a 256x16384x256 unit. */
function fastProduct(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  const row = new Float32Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      const at = p * n;
      for (let j = 0; j < n; j++) row[j] += x * b[at + j];
    }
    c.set(row, i * n);
  }
  return c;
}

/** Our kernel's recorded rate on one bench:gemm shape: '1024' for full units, '1x4096x4096' (GEMV) for thin ones. */
async function recordedGflops(label: string): Promise<{ gflops: number; source: string } | null> {
  try {
    const report = JSON.parse(await readFile(resolve(REPO, 'bench/results/gemm.json'), 'utf8')) as {
      createdAt?: string;
      shapes?: { label: string; impls: { ours?: { ok: boolean; gflops?: number } } }[];
    };
    const ours = report.shapes?.find((s) => s.label === label)?.impls.ours;
    if (!ours?.ok || !ours.gflops) return null;
    return { gflops: ours.gflops, source: `bench/results/gemm.json (${report.createdAt ?? 'undated'}): ours at ${label === '1024' ? '1024^3' : label}` };
  } catch {
    return null;
  }
}

function benchCost(rows: number, k: number, reps: number, gflops: number | null): CostResult {
  const a = operands('normal', rows * k, k + 1);
  const b = operands('normal', k * UNIT, k + 2);
  const p: Product = { a, b, c: fastProduct(a, b, rows, k, UNIT), rows, depth: k, cols: UNIT };
  const runs: number[] = [];
  for (let rep = -2; rep < reps; rep++) {
    const started = performance.now();
    const { verdict } = freivaldsCheck(p, seededBytes(rep + 10));
    const elapsed = (performance.now() - started) / 1000;
    if (!verdict.ok) throw new Error(`an honest ${rows}x${k}x${UNIT} unit was rejected: ${verdict.error.message}`);
    if (rep >= 0) runs.push(elapsed);
  }
  const sorted = [...runs].sort((x, y) => x - y);
  const verifySeconds = sorted[Math.floor(sorted.length / 2)];
  const elements = rows * k + k * UNIT + rows * UNIT;
  const compute = gflops ? (2 * rows * k * UNIT) / (gflops * 1e9) : null;
  return {
    k, shape: `${rows}x${k}x${UNIT}`, verifySeconds, runs, elements, secondsPerMegaElement: verifySeconds / (elements / 1e6),
    computeSecondsAtRecordedRate: compute, verifyOverCompute: compute ? verifySeconds / compute : null,
  };
}

const fixed = (value: number, digits = 2): string => {
  if (!Number.isFinite(value)) return 'inf';
  if (value >= 1e4) return value.toExponential(1);
  return value >= 100 ? value.toFixed(0) : value.toPrecision(digits + 1);
};
const TEST_LETTER = { row: 'r', aggregate: 'a', element: 'e', spots: 's', 'non-finite': '', shape: '' } as const;
const cell = (s: Score): string => (s.test === 'non-finite' ? 'non-finite' : `${fixed(s.score)} ${TEST_LETTER[s.test]}`);

function table(results: DepthResult[]): string {
  const header = [
    'K', 'operands', 'honest max', ...ALL_CHEATS, 'margin', `one element of ${UNIT}x${UNIT} caught above`, 'by its row alone', 'elements recomputed',
    `one element of ${SMALL_ROWS}xN caught above`,
  ];
  const lines = results.map((r) => [
    String(r.k), r.distribution, cell(r.honestMax), ...ALL_CHEATS.map((name) => cell(r.cheats[name])), fixed(r.margin),
    `${fixed(r.elementProbe.caughtAboveMultiple)}x own bound`, `${fixed(r.elementProbe.rowsAloneCaughtAboveMultiple)}x`,
    r.elementProbeSpotShare === 1 ? 'all' : `1 in ${fixed(1 / r.elementProbeSpotShare)}`,
    `${fixed(r.smallElementProbe.caughtAboveMultiple)}x own bound`,
  ]);
  return markdown(header, lines);
}

/** The thin results' table: per K, distribution and rows, the honest max and each precision cheat's smallest score. */
function thinTable(results: DepthResult[]): string {
  const header = ['K', 'operands', 'rows', 'honest max', ...CHEATS, 'margin'];
  const lines = results.flatMap((r) => r.thin.map((t) => [
    String(r.k), r.distribution, String(t.rows), cell(t.honestMax), ...CHEATS.map((name) => cell(t.cheats[name])), fixed(t.margin),
  ]));
  return markdown(header, lines);
}

function markdown(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [format(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(format)].join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const began = performance.now();
  console.log('Ergon verify bench (issue 19): Freivalds residuals as a fraction of the tolerance, and the check\'s cost per unit.');
  console.log(`  K ${options.ks.join(', ')}; operands ${options.dists.join(', ')}; ${options.seeds} random vectors per product`);
  console.log(`  honest orders and precision cheats on ${options.rows}x${options.cols} results; column cheats on ${WIDE_ROWS}x${WIDE_COLS}; single elements on ${UNIT}x${UNIT}`);

  const results: DepthResult[] = [];
  for (const k of options.ks) {
    for (const distribution of options.dists) {
      const started = performance.now();
      const result = benchDepth(k, distribution, options);
      results.push(result);
      console.log(`  K ${k} ${distribution}: honest max ${cell(result.honestMax)}, closest cheat ${fixed(result.margin)}x that (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
  }

  const recorded = await recordedGflops('1024');
  const recordedThin = await recordedGflops('1x4096x4096');
  const costs: CostResult[] = [];
  for (const [rows, rate] of [[UNIT, recorded], ...THIN_COST_ROWS.map((r) => [r, recordedThin] as const)] as const) {
    for (const k of options.costKs) {
      const cost = benchCost(rows, k, options.costReps, rate?.gflops ?? null);
      costs.push(cost);
      console.log(`  cost ${cost.shape}: ${(cost.verifySeconds * 1000).toFixed(2)} ms`);
    }
  }

  const notes = [
    'Each cell: the check\'s score, the largest of its four fractions from freivaldsCheck(), and which test gave it (r: per row, a: aggregate of the rows, ' +
      'e: an element recomputed exactly, s: aggregate of the recomputed elements). A score above 1 is a rejection. ' +
      '"honest max" is the largest over the honest summation orders and random vectors (and over the honest products under the column cheats); each cheat cell the smallest over the random vectors.',
    `Honest orders (tests/unit/work/products.ts): ${HONEST_ORDERS.join(', ')}, summed in f32 in JavaScript. Precision cheats: ${CHEATS.join(', ')}.`,
    'Column and element cheats, on 256 columns: skip-small-columns zeroes the 65 smallest of columns scaled 10^U[-2,2] (rows scaled likewise); only-large-column keeps one column 10^4 times the others and zeroes the rest; ' +
      'element-24%-of-row-rms adds 24% of its row\'s RMS to one element.',
    'margin: the smallest cheat score over the honest max, for that K and distribution.',
    `one element of ${UNIT}x${UNIT} caught above: a unit with rows and columns scaled 10^U[-2,2], ${ELEMENT_PROBES} random elements each in turn off by ${PROBE_MULTIPLE} times its own bound ` +
      `(${ROW_TAIL} sigma of the model, elementSigma()); the smallest score gives the multiple of its own bound above which the hardest of them is caught, ${PROBE_MULTIPLE} / score. ` +
      '"by its row alone": the same from the row tests (row and aggregate fractions) without the recomputed elements (where the error hides wholly in its row\'s honest residual, the multiple is at least that). "elements recomputed": the share of the unit\'s elements ' +
      `one check recomputes exactly (spot-checks.ts), each held to its own bound: all of them up to K = ${EXACT_MAX_DEPTH}.`,
    `one element of ${SMALL_ROWS}xN: a ${SMALL_ROWS}x${options.cols} result (every element recomputed), each element in turn off by ${PROBE_MULTIPLE} times its own bound; as above.`,
    `Thin results (second table): ${options.thinRows.join(', ')} rows x ${options.cols} columns, the honest orders and precision cheats as in the first ` +
      '(at K = 1 a ReLU-like row of A is zero half the time: a result of 1 or 2 such rows can be all zeros, which every cheat computes too, scored 0).',
    `Cost: freivaldsCheck() on one ${UNIT}xKx${UNIT} unit in Node (median of the timed runs after 2 warm-ups), against the unit's compute at ${recorded ? recorded.source : 'no recorded rate'}; ` +
      `thin units (${THIN_COST_ROWS.join(', ')}xKx${UNIT}) against ${recordedThin ? recordedThin.source : 'no recorded rate'}, the rate of a memory-bound shape like theirs.`,
  ];
  const report = {
    benchmark: 'verify',
    createdAt: new Date().toISOString(),
    command: ['npm run bench:verify --', ...process.argv.slice(2)].join(' '),
    settings: options,
    host: { node: process.version, platform: process.platform, arch: process.arch, cpus: [...new Set(cpus().map((c) => c.model))], logicalCores: cpus().length, loadavg: loadavg() },
    notes,
    results,
    costs,
    durationSeconds: (performance.now() - began) / 1000,
  };

  console.log('');
  console.log(table(results));
  console.log('');
  console.log(thinTable(results));
  console.log('');
  console.log('| unit | verify ms | ns per element read | compute ms at the recorded rate | verify / compute |');
  console.log('|---|---|---|---|---|');
  for (const c of costs) {
    console.log(`| ${c.shape} | ${(c.verifySeconds * 1000).toFixed(2)} | ${(c.secondsPerMegaElement * 1000).toFixed(2)} | ${c.computeSecondsAtRecordedRate ? (c.computeSecondsAtRecordedRate * 1000).toFixed(1) : '-'} | ${c.verifyOverCompute ? `${(100 * c.verifyOverCompute).toFixed(2)}%` : '-'} |`);
  }
  console.log('');
  for (const note of notes) console.log(`- ${note}`);
  const outPath = resolve(REPO, options.out);
  await mkdir(dirname(outPath), { recursive: true });
  // Infinity (a non-finite result) as a string: JSON has no number for it.
  const json = JSON.stringify(report, (_, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value), 2);
  await writeFile(outPath, `${json}\n`);
  console.log(`\nWrote ${options.out} in ${report.durationSeconds.toFixed(1)} s.`);
}

main().catch((err: unknown) => {
  console.error(`bench:verify failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
