// An onnx job's inputs and outputs as numpy's .npz, through the shared codec (src/protocol/npy.ts, npz.ts): any
// .npy numpy writes is read (C or Fortran order, either byte order, stored or compressed), and the arrays must be
// float32, what the models take and give; inputs may also be uint8, normalised to float32 by whoever runs the model.
import { fail, type Parsed } from '../../protocol/errors.ts';
import { decodeNpy, encodeNpy, ndarray } from '../../protocol/npy.ts';
import { decodeNpz, encodeNpz } from '../../protocol/npz.ts';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** A job's input: float32, or uint8 to be normalised (normalize.ts). */
export type InputArray = NpyArray | { shape: number[]; data: Uint8Array };

/** The most arrays one archive may hold: bounds the work a body makes us do. */
export const MAX_NPZ_ARRAYS = 64;
/** Room for each member's header, beyond its values, in what an archive may declare. */
const HEADER_BYTES_PER_ARRAY = 4096;

/** The float32 arrays of an .npz by name, of at most `maxElements` values in all; a clear error for anything else. */
export function readNpz(bytes: Uint8Array, maxElements: number): Parsed<Map<string, NpyArray>> {
  const decoded = decodeNpz(bytes, maxElements * 4 + MAX_NPZ_ARRAYS * HEADER_BYTES_PER_ARRAY);
  if (!decoded.ok) return fail('bad-input', `the body is not a readable .npz (numpy's np.savez): ${decoded.error.message}`);
  if (decoded.value.size > MAX_NPZ_ARRAYS) return fail('bad-input', `the .npz holds ${decoded.value.size} arrays, more than ${MAX_NPZ_ARRAYS}`);
  const arrays = new Map<string, NpyArray>();
  for (const [name, array] of decoded.value) {
    const f32 = asFloat32(array);
    if (!f32.ok) return fail(f32.error.code, `array ${JSON.stringify(name)}: ${f32.error.message}`);
    arrays.set(name, f32.value);
  }
  return { ok: true, value: arrays };
}

/** A job's inputs by name: float32 or uint8 arrays of at most `maxBytes` bytes in all; a clear error for anything else. */
export function readInputNpz(bytes: Uint8Array, maxBytes: number): Parsed<Map<string, InputArray>> {
  const decoded = decodeNpz(bytes, maxBytes + MAX_NPZ_ARRAYS * HEADER_BYTES_PER_ARRAY);
  if (!decoded.ok) return fail('bad-input', `the body is not a readable .npz (numpy's np.savez): ${decoded.error.message}`);
  if (decoded.value.size > MAX_NPZ_ARRAYS) return fail('bad-input', `the .npz holds ${decoded.value.size} arrays, more than ${MAX_NPZ_ARRAYS}`);
  const arrays = new Map<string, InputArray>();
  for (const [name, array] of decoded.value) {
    if (array.dtype === 'u1') {
      arrays.set(name, { shape: array.shape, data: array.data });
      continue;
    }
    const f32 = asFloat32(array);
    if (!f32.ok) return fail(f32.error.code, `array ${JSON.stringify(name)}: ${f32.error.message} or uint8 with ?normalize=`);
    arrays.set(name, f32.value);
  }
  return { ok: true, value: arrays };
}

/** One .npy array, which must be float32. */
export function readNpy(bytes: Uint8Array): Parsed<NpyArray> {
  const decoded = decodeNpy(bytes);
  if (!decoded.ok) return fail('bad-input', decoded.error.message);
  return asFloat32(decoded.value);
}

function asFloat32(array: ReturnType<typeof ndarray>): Parsed<NpyArray> {
  if (array.dtype !== 'f4') return fail('bad-dtype', `dtype ${array.dtype} is not supported; send float32 (np.float32, '<f4')`);
  return { ok: true, value: { shape: array.shape, data: array.data } };
}

/** An .npy file of a float32 array, as np.save writes it. */
export function writeNpy(array: NpyArray): Uint8Array {
  return encodeNpy(ndarray('f4', array.shape, Float32Array.from(array.data)));
}

/** An .npz of these arrays, stored (not deflated) as np.savez does. */
export function writeNpz(arrays: ReadonlyMap<string, NpyArray>): Uint8Array<ArrayBuffer> {
  const nd = new Map([...arrays].map(([name, array]) => [name, ndarray('f4', array.shape, Float32Array.from(array.data))]));
  const zip = encodeNpz(nd);
  return zip.buffer instanceof ArrayBuffer ? new Uint8Array(zip.buffer, zip.byteOffset, zip.byteLength) : Uint8Array.from(zip);
}
