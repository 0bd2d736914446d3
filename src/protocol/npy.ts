// numpy's .npy format, read and written as its spec says (numpy.lib.format): header versions 1.0, 2.0 and 3.0, C and
// Fortran order, little and big endian; what it cannot read it refuses with a sentence. Pure: client and coordinator.

/** The dtypes read and written: numpy's type character and item size, as in a descr ('<f4' is f4). */
export type NpyDtype = 'f2' | 'f4' | 'f8' | 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8' | 'b1';

/** The typed array that holds each dtype's values; f2 holds the IEEE half bits (JavaScript has no f16 array yet). */
export interface NpyData {
  f2: Uint16Array<ArrayBuffer>;
  f4: Float32Array<ArrayBuffer>;
  f8: Float64Array<ArrayBuffer>;
  i1: Int8Array<ArrayBuffer>;
  i2: Int16Array<ArrayBuffer>;
  i4: Int32Array<ArrayBuffer>;
  i8: BigInt64Array<ArrayBuffer>;
  u1: Uint8Array<ArrayBuffer>;
  u2: Uint16Array<ArrayBuffer>;
  u4: Uint32Array<ArrayBuffer>;
  u8: BigUint64Array<ArrayBuffer>;
  b1: Uint8Array<ArrayBuffer>;
}

/** An array in memory: always C order (row-major) and in the host's byte order, whatever the file had. */
export type NdArray = { [D in NpyDtype]: { dtype: D; shape: number[]; data: NpyData[D] } }[NpyDtype];

export interface NpyError {
  /** bad-npy: not a well-formed .npy (or truncated); unsupported-npy: well-formed, but of a kind this reader refuses. */
  code: 'bad-npy' | 'unsupported-npy';
  message: string;
}

export type NpyParsed<T> = { ok: true; value: T } | { ok: false; error: NpyError };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy pads the header so that the data starts at a multiple of 64 bytes (since 1.14; 16 before, also read). */
const HEADER_ALIGN = 64;
/** The largest header numpy itself reads (np.load's max_header_size default): bounds the parse of hostile input. */
export const MAX_HEADER_BYTES = 10_000;

const ITEM_BYTES: Record<NpyDtype, number> = { f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1 };
const ARRAY_OF: { [D in NpyDtype]: new (buffer: ArrayBuffer) => NpyData[D] } = {
  f2: Uint16Array, f4: Float32Array, f8: Float64Array, i1: Int8Array, i2: Int16Array, i4: Int32Array, i8: BigInt64Array,
  u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, u8: BigUint64Array, b1: Uint8Array,
};
/** What other type characters are, for a sentence that says why they are refused. */
const REFUSED_KINDS: Record<string, string> = {
  c: 'complex numbers', O: 'Python objects (they need pickle, which is never run)', U: 'unicode strings', S: 'byte strings',
  a: 'byte strings', V: 'raw or structured records', M: 'datetimes', m: 'timedeltas', f: 'floats of this size',
  i: 'integers of this size', u: 'integers of this size', b: 'booleans of this size',
};

const fail = (code: NpyError['code'], message: string): { ok: false; error: NpyError } => ({ ok: false, error: { code, message } });

/** The host's byte order: typed arrays use it. Every platform this runs on is little-endian; checked, not assumed. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** An array of this dtype and shape from values in C order. Throws when the count does not match the shape. */
export function ndarray<D extends NpyDtype>(dtype: D, shape: readonly number[], data: NpyData[D]): NdArray {
  const count = shape.reduce((n, d) => n * d, 1);
  if (data.length !== count) throw new RangeError(`${data.length} values for shape (${shape.join(', ')})`);
  return { dtype, shape: [...shape], data } as NdArray;
}

/** Reads a .npy file's bytes. Never throws on bad input. */
export function decodeNpy(bytes: Uint8Array): NpyParsed<NdArray> {
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    return fail('bad-npy', 'not a .npy file: it does not start with numpy\'s magic string "\\x93NUMPY"');
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (minor !== 0 || major < 1 || major > 3) return fail('unsupported-npy', `.npy format version ${major}.${minor} is not one this reader knows (1.0, 2.0, 3.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.byteLength < 8 + lengthBytes) return fail('bad-npy', 'the .npy file ends inside its header');
  const headerBytes = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerBytes;
  if (headerBytes > MAX_HEADER_BYTES) return fail('bad-npy', `the .npy header is ${headerBytes} bytes; at most ${MAX_HEADER_BYTES} are read`);
  if (dataStart > bytes.byteLength) return fail('bad-npy', `the .npy file ends inside its header (${bytes.byteLength} bytes, header to byte ${dataStart})`);
  // 1.0 and 2.0 headers are latin-1, 3.0 headers UTF-8.
  const raw = bytes.subarray(8 + lengthBytes, dataStart);
  let text: string;
  try {
    text = major === 3 ? new TextDecoder('utf-8', { fatal: true }).decode(raw) : String.fromCharCode(...raw);
  } catch {
    return fail('bad-npy', 'the version 3.0 .npy header is not valid UTF-8');
  }
  const header = parseHeader(text);
  if (!header.ok) return header;
  const { dtype, littleEndian, fortranOrder, shape } = header.value;
  const count = shape.reduce((n, d) => n * d, 1);
  const dataBytes = count * ITEM_BYTES[dtype];
  const have = bytes.byteLength - dataStart;
  if (have < dataBytes) return fail('bad-npy', `the .npy file is truncated: shape (${shape.join(', ')}) of ${dtype} needs ${dataBytes} bytes of data, it has ${have}`);
  if (have > dataBytes) return fail('bad-npy', `the .npy file has ${have - dataBytes} bytes after the data its shape (${shape.join(', ')}) describes`);
  // A fresh copy (a Node Buffer's slice would be a view into a shared pool), so the array owns its buffer.
  const copy = new Uint8Array(dataBytes);
  copy.set(bytes.subarray(dataStart, dataStart + dataBytes));
  if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(copy, ITEM_BYTES[dtype]);
  let data: NpyData[NpyDtype] = new ARRAY_OF[dtype](copy.buffer);
  if (dtype === 'b1' && (data as Uint8Array).some((x) => x > 1)) return fail('bad-npy', 'a boolean .npy array holds a byte other than 0 or 1');
  if (fortranOrder && shape.length > 1) data = fortranToC(data, shape);
  return { ok: true, value: { dtype, shape, data } as NdArray };
}

/**
 * Writes an array as .npy: little-endian, C order, a version 1.0 header (2.0 when the header would not fit in 1.0's
 * 65535 bytes), padded so that the data starts at a multiple of 64 bytes, as numpy.save does.
 */
export function encodeNpy(array: NdArray): Uint8Array<ArrayBuffer> {
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  const order = ITEM_BYTES[array.dtype] === 1 ? '|' : '<';
  const dict = `{'descr': '${order}${array.dtype}', 'fortran_order': False, 'shape': ${shape}, }`;
  let major = 1;
  let prefix = 10;
  let padded = Math.ceil((prefix + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN - prefix;
  if (padded > 0xffff) {
    major = 2;
    prefix = 12;
    padded = Math.ceil((prefix + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN - prefix;
  }
  const header = dict.padEnd(padded - 1, ' ') + '\n';
  const data = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = new Uint8Array(prefix + padded + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, padded, true);
  else view.setUint32(8, padded, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(data, prefix + padded);
  if (!HOST_LITTLE_ENDIAN) swapBytes(out.subarray(prefix + padded), ITEM_BYTES[array.dtype]);
  return out;
}

/** Any real array's values as f32 (f2 exactly; wider types rounded to nearest, as numpy's astype does). */
export function toFloat32(array: NdArray): Float32Array<ArrayBuffer> {
  if (array.dtype === 'f4') return array.data;
  if (array.dtype === 'f2') return Float32Array.from(array.data, halfToFloat);
  if (array.dtype === 'i8' || array.dtype === 'u8') return Float32Array.from(array.data, Number);
  return Float32Array.from(array.data);
}

/** The value of an IEEE half from its bits (exact: every half is an f32). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

interface Header {
  dtype: NpyDtype;
  littleEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
}

/** The header's dictionary: exactly the keys descr, fortran_order and shape, with values of their types. */
function parseHeader(text: string): NpyParsed<Header> {
  const literal = parseLiteral(text.trimEnd());
  if (!literal.ok) return fail('bad-npy', `the .npy header is not a Python dictionary literal: ${literal.message}`);
  const dict = literal.value;
  if (!(dict instanceof Map)) return fail('bad-npy', 'the .npy header is not a dictionary');
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') return fail('bad-npy', `the .npy header has keys ${keys || 'none'}; descr, fortran_order and shape expected`);
  const descr = dict.get('descr');
  const fortranOrder = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof fortranOrder !== 'boolean') return fail('bad-npy', 'the .npy header\'s fortran_order is not True or False');
  if (!Array.isArray(shape) || shape.tuple !== true || !shape.every((d) => typeof d === 'bigint' && d >= 0n)) {
    return fail('bad-npy', 'the .npy header\'s shape is not a tuple of non-negative integers');
  }
  const dims = (shape as bigint[]).map(Number);
  if (dims.reduce((n, d) => n * d, 1) > Number.MAX_SAFE_INTEGER) return fail('bad-npy', `shape (${dims.join(', ')}) has too many elements`);
  if (typeof descr !== 'string') {
    return fail('unsupported-npy', 'the array holds structured records (its descr is a list); only plain numeric arrays are read');
  }
  const match = /^([<>|=])([a-zA-Z])(\d*)$/.exec(descr);
  if (!match) return fail('unsupported-npy', `dtype ${JSON.stringify(descr)} is not one this reader knows`);
  const [, order, kind, size] = match;
  const dtype = `${kind}${size}`;
  if (!(dtype in ITEM_BYTES)) {
    const what = REFUSED_KINDS[kind] ?? 'a type this reader does not know';
    return fail('unsupported-npy', `dtype ${JSON.stringify(descr)} (${what}) is not read; use float16/32/64, int8-64, uint8-64 or bool`);
  }
  // '|' is "byte order not applicable" (one-byte items), '=' the writer's native order: little on every numpy platform in use.
  if (order === '|' && ITEM_BYTES[dtype as NpyDtype] !== 1) return fail('bad-npy', `dtype ${JSON.stringify(descr)} has no byte order`);
  return { ok: true, value: { dtype: dtype as NpyDtype, littleEndian: order !== '>', fortranOrder, shape: dims } };
}

/** The Python literals a header uses. A tuple is an array marked `tuple`, so that (3,) and [3] differ. */
type Literal = string | bigint | boolean | null | Literal[] & { tuple?: boolean } | Map<string, Literal>;

/** A tiny parser of Python literals: dicts, tuples, lists, strings, integers, True, False, None. */
function parseLiteral(text: string): { ok: true; value: Literal } | { ok: false; message: string } {
  let at = 0;
  const space = () => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const error = (what: string) => new SyntaxError(`${what} at character ${at}`);
  const value = (depth: number): Literal => {
    if (depth > 8) throw error('nesting too deep');
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const map = new Map<string, Literal>();
      for (;;) {
        space();
        if (text[at] === '}') { at++; return map; }
        const key = value(depth + 1);
        if (typeof key !== 'string') throw error('a dictionary key that is not a string');
        if (map.has(key)) throw error(`key ${key} twice`);
        space();
        if (text[at++] !== ':') throw error('":" expected');
        map.set(key, value(depth + 1));
        space();
        if (text[at] === ',') at++;
        else if (text[at] !== '}') throw error('"," or "}" expected');
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      at++;
      const items: Literal[] & { tuple?: boolean } = [];
      let commas = 0;
      for (;;) {
        space();
        if (text[at] === close) { at++; break; }
        items.push(value(depth + 1));
        space();
        if (text[at] === ',') { at++; commas++; }
        else if (text[at] !== close) throw error(`"," or "${close}" expected`);
      }
      // (3) is the integer 3 in Python; (3,) is a tuple.
      if (c === '(' && items.length === 1 && commas === 0) return items[0];
      if (c === '(') items.tuple = true;
      return items;
    }
    if (c === '\'' || c === '"') {
      const end = text.indexOf(c, at + 1);
      if (end < 0) throw error('an unterminated string');
      const s = text.slice(at + 1, end);
      if (s.includes('\\')) throw error('an escape in a string');
      at = end + 1;
      return s;
    }
    const word = /^(-?\d+|True|False|None)/.exec(text.slice(at, at + 32));
    if (!word) throw error(`unexpected ${JSON.stringify(text.slice(at, at + 10))}`);
    at += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    return BigInt(word[0]);
  };
  try {
    const result = value(0);
    space();
    if (at !== text.length) throw error('text after the dictionary');
    return { ok: true, value: result };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

function swapBytes(bytes: Uint8Array, itemBytes: number): void {
  if (itemBytes === 1) return;
  for (let at = 0; at < bytes.byteLength; at += itemBytes) bytes.subarray(at, at + itemBytes).reverse();
}

/** Values stored in Fortran order (first index fastest) rearranged into C order (last index fastest). */
function fortranToC<T extends NpyData[NpyDtype]>(source: T, shape: readonly number[]): T {
  const out = new (source.constructor as new (length: number) => T)(source.length);
  const rank = shape.length;
  const fStride: number[] = [];
  for (let d = 0, s = 1; d < rank; d++) {
    fStride.push(s);
    s *= shape[d];
  }
  const index = new Array<number>(rank).fill(0);
  let from = 0;
  for (let to = 0; to < out.length; to++) {
    out[to] = source[from];
    // Odometer over C order: the last index turns fastest; `from` follows in Fortran strides.
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      from += fStride[d];
      if (index[d] < shape[d]) break;
      from -= fStride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}
