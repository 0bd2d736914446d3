import { describe, expect, it } from 'vitest';
import { allFiniteHalves, fromHalves, toHalves } from '../../../src/work/gemm/halves.ts';

describe('halves', () => {
  it('round to the nearest half, ties to even, and read back exactly', () => {
    const values = Float32Array.from([0, -0, 1, -2, 1 / 3, 65_504, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2048 + 1]);
    const halves = toHalves(values);
    expect([...halves.slice(0, 6)]).toEqual([0x0000, 0x8000, 0x3c00, 0xc000, 0x3555, 0x7bff]);
    const back = fromHalves(halves);
    expect(back[4]).toBeCloseTo(1 / 3, 3); // 11 significant bits
    expect(back[6]).toBe(2 ** -14); // the smallest normal half
    expect(back[7]).toBe(1); // a tie rounds to the even neighbour
    expect(back[8]).toBe(1 + 4 * 2 ** -11);
    expect(back[9]).toBe(2048); // above 2048 halves step by 2
    expect(toHalves(back)).toEqual(halves); // a half's f32 value rounds to itself
  });

  it('flush what would be subnormal halves to signed zero, as a device may, so every miner computes the same job', () => {
    expect([...toHalves(Float32Array.from([2 ** -24, -(2 ** -20), 6e-5, 2 ** -14]))]).toEqual([0x0000, 0x8000, 0x0000, 0x0400]);
  });

  it('overflow beyond 65504 to infinity, which allFiniteHalves refuses', () => {
    expect(allFiniteHalves(toHalves(Float32Array.from([65_504, -65_504, 1e-9])))).toBe(true);
    expect(allFiniteHalves(toHalves(Float32Array.from([1, 65_520])))).toBe(false);
    expect(allFiniteHalves(Uint16Array.from([0x7e00]))).toBe(false); // NaN
  });
});
