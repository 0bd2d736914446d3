import { describe, expect, it } from 'vitest';
import { assembleModule, i32Const, localGet, memoryAccess, signedLeb128, simd, SimdOp, unsignedLeb128, ValType } from '../../../src/work/gemm/wasm-assembler.ts';

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

  it('assembles several functions, each exported under its name, sharing one memory', () => {
    const I32_STORE = 0x36;
    // store(address, value) and storeSeven(address): both write an i32 to the one memory.
    const bytes = assembleModule([
      { name: 'store', params: [ValType.i32, ValType.i32], locals: [], body: [localGet(0), localGet(1), memoryAccess(I32_STORE, 2, 0)] },
      { name: 'storeSeven', params: [ValType.i32], locals: [ValType.i32], body: [localGet(0), i32Const(7), memoryAccess(I32_STORE, 2, 0)] },
    ], 1);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    const memory = exports.memory as WebAssembly.Memory;
    (exports.store as (address: number, value: number) => void)(8, -5);
    (exports.storeSeven as (address: number) => void)(12);
    expect([...new Int32Array(memory.buffer, 8, 2)]).toEqual([-5, 7]);
  });

  it('refuses values outside u32 and i32', () => {
    expect(() => unsignedLeb128(-1)).toThrow(RangeError);
    expect(() => unsignedLeb128(2 ** 32)).toThrow(RangeError);
    expect(() => signedLeb128(2 ** 31)).toThrow(RangeError);
    expect(() => signedLeb128(1.5)).toThrow(RangeError);
  });
});
