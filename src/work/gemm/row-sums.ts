// Per-row weighted sums and per-column sums of squares of an f32 matrix, in WebAssembly SIMD kernels: the passes of
// Freivalds' check.
import {
  assembleModule,
  block,
  br,
  brIf,
  end,
  i32Const,
  ifThen,
  localGet,
  localSet,
  localTee,
  loop,
  memoryAccess,
  Op,
  simd,
  simdLane,
  simdMemory,
  SimdOp,
  v128Zero,
  ValType,
  type Code,
  type FunctionSpec,
} from './wasm-assembler.ts';

/**
 * For each row i of X, in f64: dotU[i] = sum_j x_ij u_j, dotV[i] = sum_j x_ij v_j, squareS[i] = sum_j x_ij^2 s_j and
 * squareT[i] = sum_j x_ij^2 t_j.
 */
export interface RowSums {
  dotU: Float64Array<ArrayBuffer>;
  dotV: Float64Array<ArrayBuffer>;
  squareS: Float64Array<ArrayBuffer>;
  squareT: Float64Array<ArrayBuffer>;
}

/** The four vectors a row is summed against. */
export interface RowWeights {
  u: Float64Array;
  v: Float64Array;
  s: Float64Array;
  t: Float64Array;
}

const WASM_PAGE_BYTES = 65_536;
/**
 * x is copied in and summed this many bytes of rows at a time (at least one row), so that the kernel reads each chunk
 * back from L1 and the memory stays small. Node 20, Xeon (48 KiB L1d): the three passes of a 256x1024x256 unit took
 * 0.42 ms in 32 KiB chunks against 0.47 ms copying each matrix whole; 16 to 64 KiB measured the same.
 */
const CHUNK_BYTES = 32_768;
/**
 * u, v, s and t are interleaved a pair of columns at a time, u_j u_j+1 v_j v_j+1 s_j s_j+1 t_j t_j+1: one pointer walks
 * all four, 64 bytes per pair, and an odd last column has zeros in its second lanes.
 */
const WEIGHT_PAIR_BYTES = 64;

// rowSums' params and locals, by index.
const X = 0; // i32: byte address of x's next element; walks the rows one after another
const ROWS = 1; // i32: rows left
const COLS = 2; // i32
const WEIGHTS = 3; // i32: byte address of the interleaved u, v, s, t
const DOT_U = 4; // i32: byte address of this row's dot with u, then its dot with v, and its squares against s and t
const DOT_V = 5;
const SQUARE_S = 6;
const SQUARE_T = 7;
const P = 8; // i32: the weights of the current pair of columns
const MAIN_END = 9; // i32: where this row's last whole group of 4 elements ends
const PAIR = 10; // v128: x_j, x_j+1 promoted to f64x2
const PAIR_SQUARED = 11; // v128: their squares
// v128: one accumulator per sum. Four sums already keep four add chains going; a second set (which the kernel once
// had, for two sums) spilled registers in V8 and measured 1.5x slower.
const DOT_UA = 12;
const DOT_VA = 13;
const SQUARE_SA = 14;
const SQUARE_TA = 15;

const f32PairLoad = (offset: number): Code => [...localGet(X), ...simdMemory(SimdOp.v128Load64Zero, 3, offset)];
const weightLoad = (offset: number): Code => [...localGet(P), ...simdMemory(SimdOp.v128Load, 4, offset)];
const addTo = (local: number): Code => [...localGet(local), ...simd(SimdOp.f64x2Add), ...localSet(local)];
const advance = (local: number, bytes: number): Code => [...localGet(local), ...i32Const(bytes), Op.i32Add, ...localSet(local)];

/**
 * Adds one pair of elements (or one element and a zero lane) to the accumulators: `loadX` leaves two f32 in the low
 * lanes, whose weights start `weights` bytes past P.
 */
function accumulate(loadX: Code, weights: number): Code[] {
  return [
    loadX, simd(SimdOp.f64x2PromoteLowF32x4), localTee(PAIR), // exact: every f32 is an f64
    weightLoad(weights), simd(SimdOp.f64x2Mul), addTo(DOT_UA),
    localGet(PAIR), weightLoad(weights + 16), simd(SimdOp.f64x2Mul), addTo(DOT_VA),
    localGet(PAIR), localGet(PAIR), simd(SimdOp.f64x2Mul), localTee(PAIR_SQUARED), // exact: 48 bits
    weightLoad(weights + 32), simd(SimdOp.f64x2Mul), addTo(SQUARE_SA),
    localGet(PAIR_SQUARED), weightLoad(weights + 48), simd(SimdOp.f64x2Mul), addTo(SQUARE_TA),
  ];
}

/** Stores lane 0 + lane 1 of `sum` at the f64 address in `out`. */
function storeSum(out: number, sum: number): Code[] {
  return [
    localGet(out),
    localGet(sum), simdLane(SimdOp.f64x2ExtractLane, 0), localGet(sum), simdLane(SimdOp.f64x2ExtractLane, 1), [Op.f64Add],
    memoryAccess(Op.f64Store, 3, 0),
  ];
}

/**
 * rowSums(x, rows, cols, weights, dotU, dotV, squareS, squareT), all byte addresses in the module's memory: x holds
 * rows x cols f32, row-major; weights the interleaved u, v, s and t; the four sums receive rows f64 each. A row runs
 * 4 elements per turn (two f64x2 pairs), then a pair if cols & 2, then one element if cols & 1. A pair is a convert,
 * 5 multiplies and 4 adds.
 */
const ROW_SUMS_BODY: readonly Code[] = [
  block(), // rows
  loop(),
  localGet(ROWS), [Op.i32Eqz], brIf(1), // no rows left: out of the row block
  v128Zero(), localTee(DOT_UA), localTee(DOT_VA), localTee(SQUARE_SA), localSet(SQUARE_TA),
  localGet(WEIGHTS), localSet(P),
  // MAIN_END = X + 4 * (cols & ~3)
  localGet(X), localGet(COLS), i32Const(-4), [Op.i32And], i32Const(2), [Op.i32Shl], [Op.i32Add], localSet(MAIN_END),

  block(), // 4 elements per turn
  loop(),
  localGet(X), localGet(MAIN_END), [Op.i32GeU], brIf(1), // past the last whole 4: out of this block
  ...accumulate(f32PairLoad(0), 0),
  ...accumulate(f32PairLoad(8), WEIGHT_PAIR_BYTES),
  advance(X, 16), advance(P, 2 * WEIGHT_PAIR_BYTES),
  br(0),
  end(),
  end(),

  // Two elements left over...
  localGet(COLS), i32Const(2), [Op.i32And], ifThen(),
  ...accumulate(f32PairLoad(0), 0),
  advance(X, 8), advance(P, WEIGHT_PAIR_BYTES),
  end(),
  // ...and one: load32_zero reads only this row's last element, and the zero high lanes add 0 * 0 to every sum.
  localGet(COLS), i32Const(1), [Op.i32And], ifThen(),
  ...accumulate([...localGet(X), ...simdMemory(SimdOp.v128Load32Zero, 2, 0)], 0),
  advance(X, 4),
  end(),

  ...storeSum(DOT_U, DOT_UA),
  ...storeSum(DOT_V, DOT_VA),
  ...storeSum(SQUARE_S, SQUARE_SA),
  ...storeSum(SQUARE_T, SQUARE_TA),
  advance(DOT_U, 8), advance(DOT_V, 8), advance(SQUARE_S, 8), advance(SQUARE_T, 8),
  localGet(ROWS), i32Const(1), [Op.i32Sub], localSet(ROWS),
  br(0),
  end(),
  end(),
];

// columnSquares' params and locals, by index.
const CX = 0; // i32: byte address of x's next element
const CROWS = 1; // i32: rows left
const CCOLS = 2; // i32
const OUT = 3; // i32: byte address of the column sums: f32, cols rounded up to 4, then 4 of padding
const Q = 4; // i32: the sums of the current group of 4 columns
const CMAIN_END = 5; // i32: where this row's last whole group of 4 elements ends
const QUAD = 6; // v128: 4 elements of x

/** Adds the squares of the f32x4 that `loadX` leaves (zeros past the row's end) to the 4 column sums `offset` bytes past Q. */
function addSquares(loadX: Code, offset: number): Code[] {
  return [
    localGet(Q),
    loadX, localTee(QUAD), localGet(QUAD), simd(SimdOp.f32x4Mul),
    localGet(Q), simdMemory(SimdOp.v128Load, 2, offset), simd(SimdOp.f32x4Add),
    simdMemory(SimdOp.v128Store, 2, offset),
  ];
}

/**
 * columnSquares(x, rows, cols, out): out[j] += sum_i x_ij^2 in f32, x rows x cols f32 row-major. Four columns per
 * f32x4, and the sums of different columns do not depend on each other: one read-add-write per 4 elements. The last
 * 1-3 elements of a row load with zeros beyond them, so they add 0 to the padding.
 */
const COLUMN_SQUARES_BODY: readonly Code[] = [
  block(),
  loop(),
  localGet(CROWS), [Op.i32Eqz], brIf(1),
  localGet(OUT), localSet(Q),
  localGet(CX), localGet(CCOLS), i32Const(-4), [Op.i32And], i32Const(2), [Op.i32Shl], [Op.i32Add], localSet(CMAIN_END),
  block(),
  loop(),
  localGet(CX), localGet(CMAIN_END), [Op.i32GeU], brIf(1),
  ...addSquares([...localGet(CX), ...simdMemory(SimdOp.v128Load, 2, 0)], 0),
  advance(CX, 16), advance(Q, 16),
  br(0),
  end(),
  end(),
  localGet(CCOLS), i32Const(2), [Op.i32And], ifThen(),
  ...addSquares([...localGet(CX), ...simdMemory(SimdOp.v128Load64Zero, 3, 0)], 0),
  advance(CX, 8), advance(Q, 8),
  end(),
  localGet(CCOLS), i32Const(1), [Op.i32And], ifThen(),
  ...addSquares([...localGet(CX), ...simdMemory(SimdOp.v128Load32Zero, 2, 0)], 0),
  advance(CX, 4),
  end(),
  localGet(CROWS), i32Const(1), [Op.i32Sub], localSet(CROWS),
  br(0),
  end(),
  end(),
];

type RowSumsKernel = (x: number, rows: number, cols: number, weights: number, dotU: number, dotV: number, squareS: number, squareT: number) => void;
type ColumnSquaresKernel = (x: number, rows: number, cols: number, out: number) => void;
interface Instance {
  memory: WebAssembly.Memory;
  rowSums: RowSumsKernel;
  columnSquares: ColumnSquaresKernel;
}

/** One instance and its memory for the process (or worker), grown to the largest vectors and chunk seen, and reused. */
let shared: Instance | undefined;

export function rowSumsModuleBytes(): Uint8Array<ArrayBuffer> {
  const i32 = ValType.i32;
  const v128 = ValType.v128;
  const functions: FunctionSpec[] = [
    {
      name: 'rowSums',
      params: [i32, i32, i32, i32, i32, i32, i32, i32], // X to SQUARE_T
      locals: [i32, i32, v128, v128, v128, v128, v128, v128], // P, MAIN_END, PAIR to SQUARE_TA
      body: ROW_SUMS_BODY,
    },
    {
      name: 'columnSquares',
      params: [i32, i32, i32, i32], // CX to OUT
      locals: [i32, i32, v128], // Q, CMAIN_END, QUAD
      body: COLUMN_SQUARES_BODY,
    },
  ];
  return assembleModule(functions, 1);
}

function instance(): Instance {
  if (shared) return shared;
  const bytes = rowSumsModuleBytes();
  if (!WebAssembly.validate(bytes)) {
    throw new Error('row sums need WebAssembly SIMD (Node 16.4+, Chrome 91+, Firefox 89+, Safari 16.4+), which this engine lacks');
  }
  // Synchronous compile: the module is well under Chromium's 4 KB limit on the main thread.
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  const { memory, rowSums, columnSquares } = exports;
  if (!(memory instanceof WebAssembly.Memory) || typeof rowSums !== 'function' || typeof columnSquares !== 'function') {
    throw new Error('row sums module lacks its exports');
  }
  shared = { memory, rowSums: rowSums as RowSumsKernel, columnSquares: columnSquares as ColumnSquaresKernel };
  return shared;
}

/** The kernel's memory, at least `bytes` long; after a grow the old buffer is detached, so take views only after this. */
function memoryOf(bytes: number): { buffer: ArrayBuffer; kernels: Instance } {
  const kernels = instance();
  const short = bytes - kernels.memory.buffer.byteLength;
  if (short > 0) kernels.memory.grow(Math.ceil(short / WASM_PAGE_BYTES));
  return { buffer: kernels.memory.buffer, kernels };
}

/**
 * The sums of each row of x (rows x cols, row-major) against the weights u, v, s and t. Copies the weights into the
 * kernel's memory, then x a few rows at a time, each chunk summed while it is still in L1, and copies the sums out.
 * Not re-entrant, which JavaScript's one thread per realm guarantees: every call reuses the same memory.
 */
export function rowSums(x: Float32Array, rows: number, cols: number, weights: RowWeights): RowSums {
  if (x.length !== rows * cols) throw new Error(`rowSums: x has ${x.length} values, expected ${rows}x${cols}`);
  const { u, v, s, t } = weights;
  if (u.length !== cols || v.length !== cols || s.length !== cols || t.length !== cols) {
    throw new Error(`rowSums: u, v, s and t have ${u.length}, ${v.length}, ${s.length} and ${t.length} values, expected ${cols}`);
  }
  const chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (4 * cols)));
  // Layout: the interleaved weights, the sums (dotU, dotV, squareS and squareT, rows each), then one chunk of x; every
  // part starts on 16 bytes.
  const pairs = Math.ceil(cols / 2);
  const weightsAt = 0;
  const sumsAt = align16(weightsAt + WEIGHT_PAIR_BYTES * pairs);
  const xAt = align16(sumsAt + 32 * rows);
  const { buffer, kernels } = memoryOf(xAt + 4 * Math.min(rows, chunkRows) * cols);

  const interleaved = new Float64Array(buffer, weightsAt, 8 * pairs);
  interleaved.fill(0);
  for (let j = 0; j < cols; j++) {
    const at = 8 * (j >> 1) + (j & 1);
    interleaved[at] = u[j];
    interleaved[at + 2] = v[j];
    interleaved[at + 4] = s[j];
    interleaved[at + 6] = t[j];
  }
  const chunk = new Float32Array(buffer, xAt, Math.min(rows, chunkRows) * cols);
  const sumAt = (which: number, row: number) => sumsAt + 8 * (which * rows + row);
  for (let row = 0; row < rows; row += chunkRows) {
    const count = Math.min(chunkRows, rows - row);
    chunk.set(x.subarray(row * cols, (row + count) * cols));
    kernels.rowSums(xAt, count, cols, weightsAt, sumAt(0, row), sumAt(1, row), sumAt(2, row), sumAt(3, row));
  }
  const sums = new Float64Array(buffer.slice(sumsAt, sumsAt + 32 * rows));
  return { dotU: sums.subarray(0, rows), dotV: sums.subarray(rows, 2 * rows), squareS: sums.subarray(2 * rows, 3 * rows), squareT: sums.subarray(3 * rows) };
}

/**
 * Column sums of squares of f32 above 2^-100 and below f32's overflow are exact enough from the f32 kernel (relative
 * error about sqrt(rows) 2^-24); outside that range a column is summed again in f64.
 */
const F32_SQUARES_MIN = 2 ** -100;

/**
 * sum_i x_ij^2 for each column j of x (rows x cols, row-major): to a few parts in a million, the column weights of
 * Freivalds' check. Summed in f32, four columns per SIMD add (3x faster than f64 pairs); a column whose sum leaves
 * f32's comfortable range (an element beyond 2^64, or only elements below 2^-50) is summed again in f64.
 */
export function columnSquares(x: Float32Array, rows: number, cols: number): Float64Array<ArrayBuffer> {
  if (x.length !== rows * cols) throw new Error(`columnSquares: x has ${x.length} values, expected ${rows}x${cols}`);
  const chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (4 * cols)));
  const outAt = 0;
  const outFloats = 4 * Math.ceil(cols / 4) + 4;
  const xAt = align16(outAt + 4 * outFloats);
  const { buffer, kernels } = memoryOf(xAt + 4 * Math.min(rows, chunkRows) * cols);
  const out = new Float32Array(buffer, outAt, outFloats);
  out.fill(0);
  const chunk = new Float32Array(buffer, xAt, Math.min(rows, chunkRows) * cols);
  for (let row = 0; row < rows; row += chunkRows) {
    const count = Math.min(chunkRows, rows - row);
    chunk.set(x.subarray(row * cols, (row + count) * cols));
    kernels.columnSquares(xAt, count, cols, outAt);
  }
  const squares = Float64Array.from(out.subarray(0, cols));
  for (let j = 0; j < cols; j++) {
    if (squares[j] >= F32_SQUARES_MIN && squares[j] < Infinity) continue;
    let sum = 0;
    for (let i = 0; i < rows; i++) sum += x[i * cols + j] ** 2;
    squares[j] = sum;
  }
  return squares;
}

function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
