// numpy's .npz (a zip of .npy files, what np.savez writes) read and written, following numpy's format spec
// (NEP 1, versions 1.0-3.0): only little-endian float32 arrays in C order, what onnx jobs carry.
import { unzipSync, zipSync } from 'fflate';
import { fail, type Parsed } from '../../protocol/errors.ts';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** The most arrays one archive may hold, and the most elements in all: bounds what a body makes us allocate. */
export const MAX_NPZ_ARRAYS = 64;

/** The arrays of an .npz by name (the file name less ".npy"); a clear error for anything else. */
export function readNpz(bytes: Uint8Array, maxElements: number): Parsed<Map<string, NpyArray>> {
  let files: Record<string, Uint8Array>;
  try {
    // The declared sizes are checked before inflating: a zip bomb is refused, not expanded.
    let declared = 0;
    let count = 0;
    files = unzipSync(bytes, {
      filter: (file) => {
        count++;
        declared += file.originalSize;
        if (count > MAX_NPZ_ARRAYS) throw new RangeError(`more than ${MAX_NPZ_ARRAYS} arrays`);
        if (declared > maxElements * 4 + count * 4096) throw new RangeError(`arrays of over ${maxElements} elements in all`);
        return true;
      },
    });
  } catch (err) {
    return fail('bad-input', `the body is not a readable .npz (numpy's np.savez): ${err instanceof Error ? err.message : String(err)}`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [file, content] of Object.entries(files)) {
    if (!file.endsWith('.npy')) return fail('bad-input', `the .npz holds ${JSON.stringify(file)}, which is not an .npy array`);
    const name = file.slice(0, -'.npy'.length);
    const array = readNpy(content);
    if (!array.ok) return fail('bad-input', `array ${JSON.stringify(name)}: ${array.error.message}`);
    arrays.set(name, array.value);
  }
  return { ok: true, value: arrays };
}

/** One .npy array: float32 little-endian ('<f4'), C order. */
export function readNpy(bytes: Uint8Array): Parsed<NpyArray> {
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b)) return fail('bad-input', 'not an .npy array (no \\x93NUMPY magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.byteLength < 12) return fail('bad-input', 'truncated .npy header');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return fail('bad-input', `.npy format version ${major} is not supported`);
  }
  if (headerStart + headerLength > bytes.byteLength) return fail('bad-input', 'truncated .npy header');
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) return fail('bad-input', `unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (descr !== '<f4') return fail('bad-dtype', `dtype ${descr} is not supported; send float32 (np.float32, '<f4')`);
  if (fortran !== 'False') return fail('bad-input', 'Fortran-order arrays are not supported; use np.ascontiguousarray');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) return fail('bad-input', `bad .npy shape (${shapeText})`);
  const elements = shape.reduce((n, d) => n * d, 1);
  const dataStart = headerStart + headerLength;
  if (bytes.byteLength - dataStart !== elements * 4) {
    return fail('bad-input', `shape (${shape.join(', ')}) needs ${elements * 4} bytes of data, the array has ${bytes.byteLength - dataStart}`);
  }
  // A copy: aligned, and owned by the job rather than by the inflated archive.
  const data = new Float32Array(elements);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart));
  return { ok: true, value: { shape, data } };
}

/** An .npy file of a float32 array, version 1.0, header padded to 64 bytes as numpy writes it. */
export function writeNpy(array: NpyArray): Uint8Array {
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

/** An .npz of these arrays, stored (not deflated) as np.savez does. */
export function writeNpz(arrays: ReadonlyMap<string, NpyArray>): Uint8Array<ArrayBuffer> {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [name, array] of arrays) files[`${name}.npy`] = [writeNpy(array), { level: 0 }];
  const zip = zipSync(files);
  return zip.buffer instanceof ArrayBuffer ? new Uint8Array(zip.buffer, zip.byteOffset, zip.byteLength) : Uint8Array.from(zip);
}
