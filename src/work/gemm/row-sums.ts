// Per-row sums of an f32 matrix against f64 vectors, in a WebAssembly SIMD kernel: the three passes of Freivalds' check.
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
} from './wasm-assembler.ts';

/**
 * For each row i of X, in f64: dotU[i] = sum_j x_ij u_j, dotV[i] = sum_j x_ij v_j, square[i] = sum_j x_ij^2 and
 * abs[i] = sum_j |x_ij|.
 */
export interface RowSums {
  dotU: Float64Array<ArrayBuffer>;
  dotV: Float64Array<ArrayBuffer>;
  square: Float64Array<ArrayBuffer>;
  abs: Float64Array<ArrayBuffer>;
}

const WASM_PAGE_BYTES = 65_536;
/**
 * x is copied in and summed this many bytes of rows at a time (at least one row), so that the kernel reads each chunk
 * back from L1 and the memory stays small. Node 20, Xeon (48 KiB L1d): the three passes of a 256x1024x256 unit took
 * 0.42 ms in 32 KiB chunks against 0.47 ms copying each matrix whole; 16 to 64 KiB measured the same.
 */
const CHUNK_BYTES = 32_768;

// The kernel's params and locals, by index.
const X = 0; // i32: byte address of x's next element; walks the rows one after another
const ROWS = 1; // i32: rows left
const COLS = 2; // i32
const U = 3; // i32: byte address of u (cols f64)
const V = 4; // i32: byte address of v (cols f64)
const DOT_U = 5; // i32: byte address of this row's dot with u, then its dot with v, square and abs
const DOT_V = 6;
const SQUARE = 7;
const ABS = 8;
const PU = 9; // i32: u_j for the current j
const PV = 10; // i32: v_j for the current j
const MAIN_END = 11; // i32: where this row's last whole group of 4 elements ends
const PAIR = 12; // v128: x_j, x_j+1 promoted to f64x2
// v128: two independent accumulators per sum, so that consecutive f64x2.adds do not wait on each other.
const DOT_U0 = 13;
const DOT_U1 = 14;
const DOT_V0 = 15;
const DOT_V1 = 16;
const SQUARE0 = 17;
const SQUARE1 = 18;
const ABS0 = 19;
const ABS1 = 20;

const f32PairLoad = (offset: number): Code => [...localGet(X), ...simdMemory(SimdOp.v128Load64Zero, 3, offset)];
const f64x2Load = (address: number, offset: number): Code => [...localGet(address), ...simdMemory(SimdOp.v128Load, 4, offset)];
const addTo = (local: number): Code => [...localGet(local), ...simd(SimdOp.f64x2Add), ...localSet(local)];
const advance = (local: number, bytes: number): Code => [...localGet(local), ...i32Const(bytes), Op.i32Add, ...localSet(local)];

/** One set of accumulators: a local per sum. */
interface Accumulators {
  dotU: number;
  dotV: number;
  square: number;
  abs: number;
}
const SET0: Accumulators = { dotU: DOT_U0, dotV: DOT_V0, square: SQUARE0, abs: ABS0 };
const SET1: Accumulators = { dotU: DOT_U1, dotV: DOT_V1, square: SQUARE1, abs: ABS1 };

/**
 * Adds one pair of elements (or one element and a zero lane) to a set of accumulators: `loadX` leaves two f32 in
 * the low lanes, `loadU` and `loadV` the matching f64x2.
 */
function accumulate(loadX: Code, loadU: Code, loadV: Code, into: Accumulators): Code[] {
  return [
    loadX, simd(SimdOp.f64x2PromoteLowF32x4), localTee(PAIR), // exact: every f32 is an f64
    loadU, simd(SimdOp.f64x2Mul), addTo(into.dotU),
    localGet(PAIR), loadV, simd(SimdOp.f64x2Mul), addTo(into.dotV),
    localGet(PAIR), localGet(PAIR), simd(SimdOp.f64x2Mul), addTo(into.square),
    localGet(PAIR), simd(SimdOp.f64x2Abs), addTo(into.abs),
  ];
}

/** Stores lane 0 + lane 1 of (a + b) at the f64 address in `out`. */
function storeSum(out: number, a: number, b: number): Code[] {
  return [
    localGet(out),
    localGet(a), localGet(b), simd(SimdOp.f64x2Add), localTee(PAIR),
    simdLane(SimdOp.f64x2ExtractLane, 0), localGet(PAIR), simdLane(SimdOp.f64x2ExtractLane, 1), [Op.f64Add],
    memoryAccess(Op.f64Store, 3, 0),
  ];
}

/**
 * rowSums(x, rows, cols, u, v, dotU, dotV, square, abs), all byte addresses in the module's memory: x holds
 * rows x cols f32, row-major; u and v hold cols f64; dotU, dotV, square and abs receive rows f64 each. A row runs 4
 * elements per turn (two f64x2 pairs, one per accumulator set), then a pair if cols & 2, then one element if
 * cols & 1. The vector ports, not memory, are the limit (a pair is a convert, 3 multiplies, 4 adds and an and; with
 * one dot instead of two it measured ~1.5 cycles per element on a Xeon), and more accumulator sets measured slower.
 */
const KERNEL_BODY: readonly Code[] = [
  block(), // rows
  loop(),
  localGet(ROWS), [Op.i32Eqz], brIf(1), // no rows left: out of the row block
  v128Zero(), localTee(DOT_U0), localTee(DOT_U1), localTee(DOT_V0), localTee(DOT_V1),
  localTee(SQUARE0), localTee(SQUARE1), localTee(ABS0), localSet(ABS1),
  localGet(U), localSet(PU),
  localGet(V), localSet(PV),
  // MAIN_END = X + 4 * (cols & ~3)
  localGet(X), localGet(COLS), i32Const(-4), [Op.i32And], i32Const(2), [Op.i32Shl], [Op.i32Add], localSet(MAIN_END),

  block(), // 4 elements per turn
  loop(),
  localGet(X), localGet(MAIN_END), [Op.i32GeU], brIf(1), // past the last whole 4: out of this block
  ...accumulate(f32PairLoad(0), f64x2Load(PU, 0), f64x2Load(PV, 0), SET0),
  ...accumulate(f32PairLoad(8), f64x2Load(PU, 16), f64x2Load(PV, 16), SET1),
  advance(X, 16), advance(PU, 32), advance(PV, 32),
  br(0),
  end(),
  end(),

  // Two elements left over...
  localGet(COLS), i32Const(2), [Op.i32And], ifThen(),
  ...accumulate(f32PairLoad(0), f64x2Load(PU, 0), f64x2Load(PV, 0), SET0),
  advance(X, 8), advance(PU, 16), advance(PV, 16),
  end(),
  // ...and one: load32_zero reads only this row's last element, and the zero high lanes add 0 * 0 to every sum.
  localGet(COLS), i32Const(1), [Op.i32And], ifThen(),
  ...accumulate(
    [...localGet(X), ...simdMemory(SimdOp.v128Load32Zero, 2, 0)],
    [...localGet(PU), ...simdMemory(SimdOp.v128Load64Zero, 3, 0)],
    [...localGet(PV), ...simdMemory(SimdOp.v128Load64Zero, 3, 0)],
    SET1,
  ),
  advance(X, 4),
  end(),

  ...storeSum(DOT_U, DOT_U0, DOT_U1),
  ...storeSum(DOT_V, DOT_V0, DOT_V1),
  ...storeSum(SQUARE, SQUARE0, SQUARE1),
  ...storeSum(ABS, ABS0, ABS1),
  advance(DOT_U, 8), advance(DOT_V, 8), advance(SQUARE, 8), advance(ABS, 8),
  localGet(ROWS), i32Const(1), [Op.i32Sub], localSet(ROWS),
  br(0),
  end(),
  end(),
];

type Kernel = (x: number, rows: number, cols: number, u: number, v: number, dotU: number, dotV: number, square: number, abs: number) => void;

/** One instance and its memory for the process (or worker), grown to the largest vectors and chunk seen, and reused. */
let shared: { memory: WebAssembly.Memory; kernel: Kernel } | undefined;

export function rowSumsModuleBytes(): Uint8Array<ArrayBuffer> {
  const i32 = ValType.i32;
  const v128 = ValType.v128;
  return assembleModule(
    {
      name: 'rowSums',
      params: [i32, i32, i32, i32, i32, i32, i32, i32, i32], // X to ABS
      locals: [i32, i32, i32, v128, v128, v128, v128, v128, v128, v128, v128, v128], // PU to MAIN_END, PAIR to ABS1
      body: KERNEL_BODY,
    },
    1,
  );
}

function instance(): { memory: WebAssembly.Memory; kernel: Kernel } {
  if (shared) return shared;
  const bytes = rowSumsModuleBytes();
  if (!WebAssembly.validate(bytes)) {
    throw new Error('row sums need WebAssembly SIMD (Node 16.4+, Chrome 91+, Firefox 89+, Safari 16.4+), which this engine lacks');
  }
  // Synchronous compile: the module is a few hundred bytes, far under Chromium's 4 KB limit on the main thread.
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  const memory = exports.memory;
  const kernel = exports.rowSums;
  if (!(memory instanceof WebAssembly.Memory) || typeof kernel !== 'function') throw new Error('row sums module lacks its exports');
  shared = { memory, kernel: kernel as Kernel };
  return shared;
}

/**
 * The sums of each row of x (rows x cols, row-major) against u and v. Copies u and v into the kernel's memory, then
 * x a few rows at a time, each chunk summed while it is still in L1, and copies the sums out. Not re-entrant, which
 * JavaScript's one thread per realm guarantees: every call reuses the same memory.
 */
export function rowSums(x: Float32Array, rows: number, cols: number, u: Float64Array, v: Float64Array): RowSums {
  if (x.length !== rows * cols) throw new Error(`rowSums: x has ${x.length} values, expected ${rows}x${cols}`);
  if (u.length !== cols || v.length !== cols) throw new Error(`rowSums: u and v have ${u.length} and ${v.length} values, expected ${cols}`);
  const chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (4 * cols)));
  // Layout: u, v, the sums (dotU, dotV, square and abs, rows each), then one chunk of x; every part starts on 16 bytes.
  const uAt = 0;
  const vAt = align16(uAt + 8 * cols);
  const sumsAt = align16(vAt + 8 * cols);
  const xAt = align16(sumsAt + 32 * rows);
  const bytes = xAt + 4 * Math.min(rows, chunkRows) * cols;

  const { memory, kernel } = instance();
  const short = bytes - memory.buffer.byteLength;
  if (short > 0) memory.grow(Math.ceil(short / WASM_PAGE_BYTES));
  // After a grow the old buffer is detached: take views only now.
  const buffer = memory.buffer;
  new Float64Array(buffer, uAt, cols).set(u);
  new Float64Array(buffer, vAt, cols).set(v);
  const chunk = new Float32Array(buffer, xAt, Math.min(rows, chunkRows) * cols);
  const sumAt = (which: number, row: number) => sumsAt + 8 * (which * rows + row);
  for (let row = 0; row < rows; row += chunkRows) {
    const count = Math.min(chunkRows, rows - row);
    chunk.set(x.subarray(row * cols, (row + count) * cols));
    kernel(xAt, count, cols, uAt, vAt, sumAt(0, row), sumAt(1, row), sumAt(2, row), sumAt(3, row));
  }
  const sums = new Float64Array(buffer.slice(sumsAt, sumsAt + 32 * rows));
  return { dotU: sums.subarray(0, rows), dotV: sums.subarray(rows, 2 * rows), square: sums.subarray(2 * rows, 3 * rows), abs: sums.subarray(3 * rows) };
}

function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
