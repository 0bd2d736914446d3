// The audit's comparison of a miner's output with the coordinator's re-run: how much of the model's tolerance each
// element uses. Pure; the coordinator's audit and bench:tolerance measure with the same function.
import type { Tolerance } from './model.ts';

/**
 * Each element's allowance: abs + rel * (|reference| + the reference output's root mean square). The RMS term is there
 * because an honest float32 difference scales with the sums that produced an element, not with the element: a logit
 * that cancels to 0.03 out of terms of ~100 differs by 5e-5 between onnxruntime-web and -node (bench:tolerance on the
 * tests' MLP used 40% of 1e-4 + 1e-3 |x|); the output's RMS stands for that scale, and costs a cheat nothing it could use.
 */
export function toleranceFractions(got: Float32Array, want: Float32Array, tolerance: Tolerance): Float32Array {
  const scale = rms(want);
  const fractions = new Float32Array(want.length);
  for (let i = 0; i < want.length; i++) {
    // NaN in either stays NaN: never within the tolerance.
    fractions[i] = Math.abs(got[i] - want[i]) / (tolerance.abs + tolerance.rel * (Math.abs(want[i]) + scale));
  }
  return fractions;
}

/** The element using the most of its allowance (the first NaN, if any): the audit fails when its fraction is over 1. */
export function worstElement(got: Float32Array, want: Float32Array, tolerance: Tolerance): { index: number; fraction: number; allowance: number } {
  const fractions = toleranceFractions(got, want, tolerance);
  let index = 0;
  for (let i = 0; i < fractions.length; i++) {
    if (Number.isNaN(fractions[i])) {
      index = i;
      break;
    }
    if (fractions[i] > fractions[index]) index = i;
  }
  const scale = rms(want);
  return { index, fraction: fractions[index] ?? 0, allowance: tolerance.abs + tolerance.rel * (Math.abs(want[index] ?? 0) + scale) };
}

/** Root mean square of the values (0 for none); non-finite values are left out, so one cannot widen the scale. */
export function rms(values: Float32Array): number {
  let sum = 0;
  let count = 0;
  for (const x of values) {
    if (Number.isFinite(x)) {
      sum += x * x;
      count++;
    }
  }
  return count === 0 ? 0 : Math.sqrt(sum / count);
}
