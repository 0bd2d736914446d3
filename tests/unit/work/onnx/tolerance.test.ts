import { describe, expect, it } from 'vitest';
import { rms, toleranceFractions, worstElement } from '../../../../src/work/onnx/tolerance.ts';

const TOLERANCE = { abs: 1e-4, rel: 1e-3 };

describe('the audit tolerance', () => {
  it('allows an element abs + rel (|x| + the output\'s RMS)', () => {
    const want = Float32Array.from([3, -4, 0, 0]); // RMS 2.5
    const allowance = (x: number) => 1e-4 + 1e-3 * (Math.abs(x) + 2.5);
    const got = Float32Array.from([3 + allowance(3) / 2, -4 - allowance(-4) * 2, 0, allowance(0) / 4]);
    const fractions = toleranceFractions(got, want, TOLERANCE);
    expect(fractions[0]).toBeCloseTo(0.5, 3);
    expect(fractions[1]).toBeCloseTo(2, 3);
    expect(fractions[2]).toBe(0);
    expect(fractions[3]).toBeCloseTo(0.25, 3);
    expect(worstElement(got, want, TOLERANCE)).toMatchObject({ index: 1 });
    expect(worstElement(got, want, TOLERANCE).fraction).toBeCloseTo(2, 3);
  });

  it('passes a logit that cancels near zero among large ones, with an honest float32 difference', () => {
    // The tests' MLP: logits of RMS ~100, one at 0.034 off by 5e-5 between onnxruntime-web and -node (bench:tolerance).
    const want = Float32Array.from([120, -95, 0.0343, 80]);
    const got = Float32Array.from([120.00001, -95.00002, 0.03425, 80]);
    expect(worstElement(got, want, TOLERANCE).fraction).toBeLessThan(0.01);
  });

  it('rejects outputs scaled by 0.99, zeros, and a NaN', () => {
    const want = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 10);
    expect(worstElement(want.map((x) => x * 0.99), want, TOLERANCE).fraction).toBeGreaterThan(1);
    expect(worstElement(new Float32Array(64), want, TOLERANCE).fraction).toBeGreaterThan(1);
    const nan = Float32Array.from(want);
    nan[5] = Number.NaN;
    expect(worstElement(nan, want, TOLERANCE)).toMatchObject({ index: 5, fraction: Number.NaN });
  });

  it('rejects probabilities scaled by 0.99 where the model is confident', () => {
    const want = Float32Array.from({ length: 100 }, (_, i) => (i % 10 === 0 ? 0.98 : 0.0001));
    expect(worstElement(want.map((x) => x * 0.99), want, TOLERANCE).fraction).toBeGreaterThan(1);
  });

  it('takes the RMS over finite values only', () => {
    expect(rms(Float32Array.from([3, 4, Number.POSITIVE_INFINITY]))).toBeCloseTo(Math.sqrt(12.5), 6);
    expect(rms(new Float32Array(0))).toBe(0);
  });
});
