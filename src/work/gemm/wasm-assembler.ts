// A minimal WebAssembly binary assembler: just the sections and instructions that row-sums.ts needs.
// Encodings from the core spec's binary format and the SIMD proposal's BinarySIMD.md opcode table.

/** One instruction, or a run of them, as bytes. A function body is a list of these. */
export type Code = readonly number[];

export const ValType = { i32: 0x7f, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof ValType)[keyof typeof ValType];

/** Core opcodes: one byte each. */
export const Op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  f64Store: 0x39,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32And: 0x71,
  i32Shl: 0x74,
  f64Add: 0xa0,
} as const;

/** SIMD opcodes: written after the 0xfd prefix as an unsigned LEB128, so those >= 0x80 take two bytes. */
export const SimdOp = {
  v128Load: 0x00,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f64x2ExtractLane: 0x21,
  v128Load32Zero: 0x5c,
  v128Load64Zero: 0x5d,
  f64x2PromoteLowF32x4: 0x5f,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f64x2Abs: 0xec,
  f64x2Add: 0xf0,
  f64x2Mul: 0xf2,
} as const;

const SIMD_PREFIX = 0xfd;
/** Block type of a block, loop or if that takes and leaves nothing on the stack. */
const EMPTY_BLOCK = 0x40;
const SECTION = { type: 1, function: 3, memory: 5, export: 7, code: 10 } as const;
const EXPORT_KIND = { func: 0x00, memory: 0x02 } as const;
const FUNC_TYPE = 0x60;
/** Limits of a memory with a minimum size and no maximum. */
const LIMITS_MIN = 0x00;
const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export function unsignedLeb128(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`not a u32: ${value}`);
  const bytes: number[] = [];
  let rest = value;
  do {
    const low = rest & 0x7f;
    rest = Math.floor(rest / 128);
    bytes.push(rest === 0 ? low : low | 0x80);
  } while (rest !== 0);
  return bytes;
}

export function signedLeb128(value: number): number[] {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) throw new RangeError(`not an i32: ${value}`);
  const bytes: number[] = [];
  let rest = value;
  for (;;) {
    const low = rest & 0x7f;
    rest >>= 7;
    // Done once the rest is all sign bits and the sign bit (0x40) of this byte agrees with them.
    const done = (rest === 0 && (low & 0x40) === 0) || (rest === -1 && (low & 0x40) !== 0);
    bytes.push(done ? low : low | 0x80);
    if (done) return bytes;
  }
}

// Instructions.
export const localGet = (index: number): Code => [Op.localGet, ...unsignedLeb128(index)];
export const localSet = (index: number): Code => [Op.localSet, ...unsignedLeb128(index)];
export const localTee = (index: number): Code => [Op.localTee, ...unsignedLeb128(index)];
export const i32Const = (value: number): Code => [Op.i32Const, ...signedLeb128(value)];
export const block = (): Code => [Op.block, EMPTY_BLOCK];
export const loop = (): Code => [Op.loop, EMPTY_BLOCK];
export const ifThen = (): Code => [Op.if, EMPTY_BLOCK];
/** Closes the innermost block, loop or if, and (at the outermost level) the function body. */
export const end = (): Code => [Op.end];
/** Branches to the enclosing block, loop or if `depth` levels out (0: the innermost). */
export const br = (depth: number): Code => [Op.br, ...unsignedLeb128(depth)];
export const brIf = (depth: number): Code => [Op.brIf, ...unsignedLeb128(depth)];
/** A load or store: alignment as log2 of bytes (a hint; unaligned addresses still work), then a constant offset. */
export const memoryAccess = (op: number, alignLog2: number, offset: number): Code => [
  op,
  ...unsignedLeb128(alignLog2),
  ...unsignedLeb128(offset),
];
export const simd = (op: number): Code => [SIMD_PREFIX, ...unsignedLeb128(op)];
export const simdMemory = (op: number, alignLog2: number, offset: number): Code => [
  ...simd(op),
  ...unsignedLeb128(alignLog2),
  ...unsignedLeb128(offset),
];
export const simdLane = (op: number, lane: number): Code => [...simd(op), lane];
export const v128Zero = (): Code => [...simd(SimdOp.v128Const), ...new Array<number>(16).fill(0)];

export interface FunctionSpec {
  name: string;
  params: readonly ValType[];
  /** Locals after the params, in index order. */
  locals: readonly ValType[];
  body: readonly Code[];
}

/**
 * A module of exported functions without results, each under its own name, and one exported memory of `memoryPages`
 * 64 KiB pages (growable, to the wasm32 limit).
 */
export function assembleModule(fns: readonly FunctionSpec[], memoryPages: number): Uint8Array<ArrayBuffer> {
  // One type per function, in the same order: function i has type i.
  const types = fns.map((fn) => [FUNC_TYPE, ...vector(fn.params.map((t) => [t])), ...vector([])]);
  const bodies = fns.map((fn) => {
    const body = [...localGroups(fn.locals), ...fn.body.flat(), Op.end];
    return [...unsignedLeb128(body.length), ...body];
  });
  return new Uint8Array([
    ...MAGIC_AND_VERSION,
    ...section(SECTION.type, vector(types)),
    ...section(SECTION.function, vector(fns.map((_, index) => unsignedLeb128(index)))),
    ...section(SECTION.memory, vector([[LIMITS_MIN, ...unsignedLeb128(memoryPages)]])),
    ...section(
      SECTION.export,
      vector([
        ...fns.map((fn, index) => [...name(fn.name), EXPORT_KIND.func, ...unsignedLeb128(index)]),
        [...name('memory'), EXPORT_KIND.memory, ...unsignedLeb128(0)],
      ]),
    ),
    ...section(SECTION.code, vector(bodies)),
  ]);
}

function vector(items: readonly Code[]): number[] {
  return [...unsignedLeb128(items.length), ...items.flat()];
}

function section(id: number, contents: Code): number[] {
  return [id, ...unsignedLeb128(contents.length), ...contents];
}

function name(text: string): number[] {
  const utf8 = new TextEncoder().encode(text);
  return [...unsignedLeb128(utf8.length), ...utf8];
}

/** Locals are declared as runs of one type: [count, type] per run. */
function localGroups(locals: readonly ValType[]): number[] {
  const groups: Code[] = [];
  for (let at = 0; at < locals.length; ) {
    let end = at;
    while (end < locals.length && locals[end] === locals[at]) end++;
    groups.push([...unsignedLeb128(end - at), locals[at]]);
    at = end;
  }
  return vector(groups);
}
