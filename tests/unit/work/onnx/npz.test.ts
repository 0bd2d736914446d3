import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { encodeNpy, ndarray } from '../../../../src/protocol/npy.ts';
import { readNpz, readNpy, writeNpy, writeNpz } from '../../../../src/work/onnx/npz.ts';

describe('npz', () => {
  it('reads back what it writes, names, shapes and values', () => {
    const arrays = new Map([
      ['x', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
      ['y', { shape: [4], data: Float32Array.from([0.25, 1e-7, -3e5, 7]) }],
    ]);
    const read = readNpz(writeNpz(arrays), 1_000);
    expect(read.ok && [...read.value]).toEqual([...arrays]);
  });

  it('writes the header numpy writes: magic, version 1.0, padded to 64 bytes', () => {
    const npy = writeNpy({ shape: [3], data: new Float32Array(3) });
    expect([...npy.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = npy[8] | (npy[9] << 8);
    expect((10 + headerLength) % 64).toBe(0);
    expect(new TextDecoder().decode(npy.subarray(10, 10 + headerLength))).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
  });

  it('refuses other dtypes, a wrong data length and non-zip bodies, with reasons, and reads Fortran order', () => {
    const npy = writeNpy({ shape: [2], data: new Float32Array(2) });
    const edit = (from: string, to: string) => {
      const text = new TextDecoder('latin1').decode(npy).replace(from, to);
      return Uint8Array.from([...text].map((c) => c.charCodeAt(0)));
    };
    expect(readNpy(encodeNpy(ndarray('f8', [2], new Float64Array(2))))).toMatchObject({ ok: false, error: { code: 'bad-dtype' } });
    expect(readNpy(edit('False', 'True '))).toMatchObject({ ok: true, value: { shape: [2] } });
    expect(readNpy(edit('(2,)', '(3,)'))).toMatchObject({ ok: false, error: { code: 'bad-input' } });
    expect(readNpz(new TextEncoder().encode('PK not really'), 100)).toMatchObject({ ok: false, error: { code: 'bad-input' } });
    expect(readNpz(zipSync({ 'notes.txt': new Uint8Array(3) }), 100)).toMatchObject({ ok: false, error: { code: 'bad-input' } });
  });

  it('refuses an archive that declares more data than allowed before inflating it', () => {
    const big = writeNpz(new Map([['x', { shape: [100_000], data: new Float32Array(100_000) }]]));
    expect(readNpz(big, 1_000)).toMatchObject({ ok: false, error: { code: 'bad-input' } });
  });
});
