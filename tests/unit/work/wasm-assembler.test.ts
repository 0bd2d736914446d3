import { describe, expect, it } from 'vitest';
import { signedLeb128, simd, SimdOp, unsignedLeb128 } from '../../../src/work/gemm/wasm-assembler.ts';

describe('wasm assembler', () => {
  it('encodes LEB128 as the WebAssembly spec does', () => {
    expect(unsignedLeb128(0)).toEqual([0x00]);
    expect(unsignedLeb128(127)).toEqual([0x7f]);
    expect(unsignedLeb128(128)).toEqual([0x80, 0x01]);
    expect(unsignedLeb128(624_485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(unsignedLeb128(0xffff_ffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(signedLeb128(0)).toEqual([0x00]);
    expect(signedLeb128(63)).toEqual([0x3f]);
    expect(signedLeb128(64)).toEqual([0xc0, 0x00]);
    expect(signedLeb128(-1)).toEqual([0x7f]);
    expect(signedLeb128(-4)).toEqual([0x7c]);
    expect(signedLeb128(-64)).toEqual([0x40]);
    expect(signedLeb128(-65)).toEqual([0xbf, 0x7f]);
    expect(signedLeb128(-123_456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(signedLeb128(-(2 ** 31))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
  });

  it('writes SIMD opcodes of 0x80 and above in two bytes after the prefix', () => {
    expect(simd(SimdOp.f64x2PromoteLowF32x4)).toEqual([0xfd, 0x5f]);
    expect(simd(SimdOp.f64x2Add)).toEqual([0xfd, 0xf0, 0x01]);
    expect(simd(SimdOp.f64x2Mul)).toEqual([0xfd, 0xf2, 0x01]);
    expect(simd(SimdOp.f64x2Abs)).toEqual([0xfd, 0xec, 0x01]);
  });

  it('refuses values outside u32 and i32', () => {
    expect(() => unsignedLeb128(-1)).toThrow(RangeError);
    expect(() => unsignedLeb128(2 ** 32)).toThrow(RangeError);
    expect(() => signedLeb128(2 ** 31)).toThrow(RangeError);
    expect(() => signedLeb128(1.5)).toThrow(RangeError);
  });
});
