// numpy's .npz: a zip of .npy files, one per array name, as np.savez (stored) and np.savez_compressed (deflate)
// write them. Read and written with fflate; sizes are checked before anything is inflated. Pure: client and coordinator.
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { decodeNpy, encodeNpy, type NdArray, type NpyError, type NpyParsed } from './npy.ts';

/** The most bytes an .npz may inflate to, unless the caller says otherwise: 1 GiB. */
export const MAX_NPZ_BYTES = 1024 * 1024 * 1024;

export interface NpzError {
  code: NpyError['code'] | 'bad-npz';
  message: string;
}

/** Reads an .npz's arrays by name (the member's name without ".npy"), in the archive's order. Never throws on bad input. */
export function decodeNpz(bytes: Uint8Array, maxBytes = MAX_NPZ_BYTES): { ok: true; value: Map<string, NdArray> } | { ok: false; error: NpzError } {
  let declared = 0;
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, {
      // What each member says it inflates to, summed and refused over the limit before any is inflated.
      filter: (file) => {
        declared += file.originalSize;
        if (declared > maxBytes) throw new RangeError(`its arrays would take more than ${maxBytes} bytes`);
        return true;
      },
    });
  } catch (err) {
    return { ok: false, error: { code: 'bad-npz', message: `not a readable .npz (zip): ${err instanceof Error ? err.message : String(err)}` } };
  }
  const arrays = new Map<string, NdArray>();
  let total = 0;
  for (const [name, member] of Object.entries(members)) {
    total += member.byteLength;
    if (total > maxBytes) return { ok: false, error: { code: 'bad-npz', message: `its arrays take more than ${maxBytes} bytes` } };
    if (!name.endsWith('.npy')) return { ok: false, error: { code: 'bad-npz', message: `member ${JSON.stringify(name)} is not a .npy array` } };
    const array: NpyParsed<NdArray> = decodeNpy(member);
    if (!array.ok) return { ok: false, error: { code: array.error.code, message: `array ${JSON.stringify(name.slice(0, -4))}: ${array.error.message}` } };
    arrays.set(name.slice(0, -4), array.value);
  }
  if (arrays.size === 0) return { ok: false, error: { code: 'bad-npz', message: 'the .npz holds no arrays' } };
  return { ok: true, value: arrays };
}

/** Writes arrays as an .npz: stored like np.savez, or deflated like np.savez_compressed. */
export function encodeNpz(arrays: ReadonlyMap<string, NdArray> | Readonly<Record<string, NdArray>>, options: { compress?: boolean } = {}): Uint8Array {
  const entries = arrays instanceof Map ? [...arrays.entries()] : Object.entries(arrays);
  const files: Zippable = {};
  for (const [name, array] of entries) files[`${name}.npy`] = encodeNpy(array);
  return zipSync(files, { level: options.compress ? 6 : 0 });
}
