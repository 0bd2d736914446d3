// The .npy/.npz codec against files written and read by real numpy: every header version, both orders, both byte
// orders, every dtype it reads; and the files it refuses, each with a sentence.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, halfToFloat, ndarray, toFloat32, type NdArray } from '../../../src/protocol/npy.ts';
import { decodeNpz, encodeNpz } from '../../../src/protocol/npz.ts';
import { numpyMissing, python } from '../../helpers/numpy.ts';

const missing = numpyMissing();
if (missing) throw new Error(missing);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ergon-npy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DTYPES = ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1'];

/** Bytes of the array's values as numpy holds them: C order, little-endian. */
const bytesOf = (a: NdArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);

describe('npy written by numpy', () => {
  // For every dtype, shape, order, byte order and version: the file, and its values as C-order little-endian bytes.
  const CASES = `
import numpy as np, json, itertools
rng = np.random.default_rng(7)
cases = []
for dt, shape, fortran, big, version in itertools.product(${JSON.stringify(DTYPES)}, [(5,), (3, 4), (2, 3, 4), (), (0, 3)], [False, True], [False, True], [1, 2, 3]):
    if dt == 'b1': a = rng.integers(0, 2, size=shape).astype('?')
    elif dt[0] == 'f': a = (rng.standard_normal(shape) * 100).astype(dt)
    else: a = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, size=shape, dtype=dt, endpoint=True)
    if big: a = a.astype(a.dtype.newbyteorder('>'))
    if fortran: a = np.asfortranarray(a)
    name = f"{dt}-{'x'.join(map(str, shape)) or 'scalar'}-{'F' if fortran else 'C'}-{'be' if big else 'le'}-v{version}"
    with open(name + '.npy', 'wb') as f: np.lib.format.write_array(f, a, version=(version, 0))
    open(name + '.bin', 'wb').write(np.ascontiguousarray(a.astype(a.dtype.newbyteorder('<'))).tobytes())
    cases.append({'name': name, 'dtype': dt, 'shape': list(a.shape), 'fortran': a.flags.f_contiguous and a.ndim > 1})
print(json.dumps(cases))
`;
  let cases: { name: string; dtype: string; shape: number[]; fortran: boolean }[] = [];
  beforeAll(() => {
    cases = JSON.parse(python(CASES, dir));
  });

  it('reads each one to the values numpy holds, in C order', () => {
    expect(cases.length).toBe(DTYPES.length * 5 * 2 * 2 * 3);
    expect(cases.filter((c) => c.fortran).length).toBeGreaterThan(0);
    for (const c of cases) {
      const file = readFileSync(join(dir, `${c.name}.npy`));
      const parsed = decodeNpy(file);
      if (!parsed.ok) throw new Error(`${c.name}: ${parsed.error.message}`);
      expect(parsed.value.dtype, c.name).toBe(c.dtype);
      expect(parsed.value.shape, c.name).toEqual(c.shape);
      expect(bytesOf(parsed.value).equals(readFileSync(join(dir, `${c.name}.bin`))), c.name).toBe(true);
    }
  });

  it('reads a version 3.0 header, which is UTF-8', () => {
    const file = readFileSync(join(dir, 'f4-3x4-C-le-v3.npy'));
    expect(file[6]).toBe(3);
    expect(decodeNpy(file).ok).toBe(true);
  });
});

describe('npy written here, read by numpy', () => {
  const arrays: Record<string, NdArray> = {
    f4: ndarray('f4', [3, 4], Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2.25)),
    f8: ndarray('f8', [2, 2, 2], Float64Array.from({ length: 8 }, (_, i) => Math.PI * i)),
    f2: ndarray('f2', [4], Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001])),
    i8: ndarray('i8', [3], BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 63n - 1n])),
    u1: ndarray('u1', [2, 3], Uint8Array.from([0, 1, 2, 253, 254, 255])),
    b1: ndarray('b1', [2], Uint8Array.from([1, 0])),
    scalar: ndarray('f8', [], Float64Array.from([42])),
    empty: ndarray('i4', [0, 5], new Int32Array(0)),
  };

  it('numpy loads each with its dtype, shape and values, and the data 64-byte aligned', () => {
    for (const [name, array] of Object.entries(arrays)) writeFileSync(join(dir, `ours-${name}.npy`), encodeNpy(array));
    const out = python(`
import numpy as np, json
res = {}
for name in ${JSON.stringify(Object.keys(arrays))}:
    raw = open('ours-' + name + '.npy', 'rb').read()
    version = raw[6]
    hlen = int.from_bytes(raw[8:10] if version == 1 else raw[8:12], 'little')
    a = np.load('ours-' + name + '.npy')
    res[name] = {'dtype': a.dtype.str, 'shape': list(a.shape), 'hex': np.ascontiguousarray(a).tobytes().hex(), 'version': version,
                 'aligned': ((10 if version == 1 else 12) + hlen) % 64 == 0}
print(json.dumps(res))
`, dir);
    const loaded = JSON.parse(out) as Record<string, { dtype: string; shape: number[]; hex: string; version: number; aligned: boolean }>;
    for (const [name, array] of Object.entries(arrays)) {
      expect(loaded[name].dtype.slice(1), name).toBe(array.dtype === 'b1' ? 'b1' : array.dtype);
      expect(loaded[name].shape, name).toEqual(array.shape);
      expect(loaded[name].hex, name).toBe(bytesOf(array).toString('hex'));
      expect(loaded[name].aligned, name).toBe(true);
      expect(loaded[name].version, name).toBe(1);
    }
  });

  it('round-trips every array through its own reader', () => {
    for (const array of Object.values(arrays)) {
      const back = decodeNpy(encodeNpy(array));
      if (!back.ok) throw new Error(back.error.message);
      expect(back.value.dtype).toBe(array.dtype);
      expect(back.value.shape).toEqual(array.shape);
      expect(bytesOf(back.value).equals(bytesOf(array))).toBe(true);
    }
  });

  it('gives f16 values their exact f32 value', () => {
    expect(Array.from(toFloat32(arrays.f2))).toEqual([1, -2, 65504, 2 ** -24]);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });
});

describe('npz', () => {
  it('reads what np.savez and np.savez_compressed write, by name', () => {
    python(`
import numpy as np
x = np.arange(12, dtype='<f4').reshape(3, 4)
y = np.asfortranarray(np.arange(6, dtype='>i8').reshape(2, 3))
np.savez('plain.npz', x=x, y=y)
np.savez_compressed('packed.npz', x=x, y=y)
`, dir);
    for (const file of ['plain.npz', 'packed.npz']) {
      const parsed = decodeNpz(readFileSync(join(dir, file)));
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect([...parsed.value.keys()]).toEqual(['x', 'y']);
      expect(Array.from(toFloat32(parsed.value.get('x') as NdArray))).toEqual(Array.from({ length: 12 }, (_, i) => i));
      const y = parsed.value.get('y') as NdArray;
      expect(y.shape).toEqual([2, 3]);
      expect(Array.from(y.data as BigInt64Array)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
    }
  });

  it('writes .npz files numpy reads, stored and compressed', () => {
    const arrays = { logits: ndarray('f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])), ids: ndarray('i4', [2], Int32Array.from([7, -8])) };
    writeFileSync(join(dir, 'ours.npz'), encodeNpz(arrays));
    writeFileSync(join(dir, 'ours-packed.npz'), encodeNpz(arrays, { compress: true }));
    const out = python(`
import numpy as np, json
print(json.dumps([{k: v.tolist() for k, v in np.load(f).items()} for f in ['ours.npz', 'ours-packed.npz']]))
`, dir);
    expect(JSON.parse(out)).toEqual([
      { logits: [[1, 2, 3], [4, 5, 6]], ids: [7, -8] },
      { logits: [[1, 2, 3], [4, 5, 6]], ids: [7, -8] },
    ]);
  });

  it('refuses a zip that is not an .npz, a truncated one, and one whose member is not a .npy', () => {
    const good = encodeNpz({ x: ndarray('f4', [2], Float32Array.from([1, 2])) });
    const truncated = decodeNpz(good.subarray(0, good.length - 30));
    expect(truncated).toMatchObject({ ok: false, error: { code: 'bad-npz' } });
    expect(decodeNpz(new TextEncoder().encode('hello'))).toMatchObject({ ok: false, error: { code: 'bad-npz' } });
    const bad = encodeNpz({ x: ndarray('f4', [2], Float32Array.from([1, 2])) });
    // Corrupt the member's magic: the archive is fine, the array is not.
    const at = Buffer.from(bad).indexOf(Buffer.from('\x93NUMPY', 'latin1'));
    bad[at + 1] = 0x41;
    const parsed = decodeNpz(bad);
    expect(parsed).toMatchObject({ ok: false, error: { code: 'bad-npy' } });
    if (!parsed.ok) expect(parsed.error.message).toMatch(/^array "x": not a \.npy file/);
  });

  it('refuses an archive that says it inflates beyond the limit before inflating it', () => {
    const npz = encodeNpz({ x: ndarray('f4', [1000], new Float32Array(1000)) }, { compress: true });
    expect(decodeNpz(npz, 1000)).toMatchObject({ ok: false, error: { code: 'bad-npz', message: expect.stringMatching(/more than 1000 bytes/) } });
  });
});

describe('npy it refuses, with a sentence', () => {
  const good = encodeNpy(ndarray('f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])));
  const withHeader = (dict: string, data = new Uint8Array(24)) => {
    const header = `${dict}`.padEnd(117, ' ') + '\n';
    const out = new Uint8Array(10 + header.length + data.length);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
    for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
    out.set(data, 10 + header.length);
    return out;
  };
  const refused = (bytes: Uint8Array) => {
    const parsed = decodeNpy(bytes);
    if (parsed.ok) throw new Error('accepted');
    return parsed.error;
  };

  it('not a .npy at all', () => {
    expect(refused(new TextEncoder().encode('1,2,3\n4,5,6\n'))).toEqual({ code: 'bad-npy', message: expect.stringMatching(/magic/) });
    expect(refused(new Uint8Array(0)).code).toBe('bad-npy');
  });

  it('truncated in the header and in the data, and with bytes after the data', () => {
    expect(refused(good.subarray(0, 40)).message).toMatch(/ends inside its header/);
    expect(refused(good.subarray(0, good.length - 1)).message).toMatch(/truncated: shape \(2, 3\) of f4 needs 24 bytes of data, it has 23/);
    expect(refused(Uint8Array.from([...good, 0])).message).toMatch(/1 bytes after the data/);
  });

  it('an unknown format version', () => {
    const v4 = Uint8Array.from(good);
    v4[6] = 4;
    expect(refused(v4)).toEqual({ code: 'unsupported-npy', message: expect.stringMatching(/version 4\.0/) });
  });

  it('object, structured, complex and string arrays', () => {
    expect(refused(withHeader("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"))).toEqual({ code: 'unsupported-npy', message: expect.stringMatching(/pickle/) });
    expect(refused(withHeader("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (3,), }")).message).toMatch(/structured/);
    expect(refused(withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }")).message).toMatch(/complex/);
    expect(refused(withHeader("{'descr': '<U5', 'fortran_order': False, 'shape': (3,), }")).message).toMatch(/unicode/);
  });

  it('headers that are not what numpy writes', () => {
    expect(refused(withHeader("{'descr': '<f4', 'shape': (2, 3), }")).message).toMatch(/keys descr, shape/);
    expect(refused(withHeader("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }")).message).toMatch(/fortran_order/);
    expect(refused(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }")).message).toMatch(/shape/);
    expect(refused(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }")).message).toMatch(/shape/);
    expect(refused(withHeader("__import__('os').system('true')")).message).toMatch(/not a Python dictionary literal/);
    expect(refused(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}")).message).toMatch(/keys/);
    expect(refused(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000, 100000), }")).message).toMatch(/too many elements/);
  });

  it('a bool array holding another byte', () => {
    expect(refused(withHeader("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", Uint8Array.from([1, 2]))).message).toMatch(/boolean/);
  });
});
