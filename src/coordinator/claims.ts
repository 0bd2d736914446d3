// Plausibility of what a miner claims about its work, pure: a GPU time no hardware could achieve is refused.
import type { ProtocolError } from '../protocol/errors.ts';

/**
 * No device runs f32 arithmetic through WebGPU faster than this: WebGPU has no tensor cores, and an H100's plain f32
 * peak is about 67 TFLOP/s, so 200 TFLOP/s leaves a 3x margin.
 */
export const MAX_PLAUSIBLE_OPS_PER_SECOND = 2e14;
/** Browsers quantize timers to 100 µs; a claim within one quantum of the bound is given the benefit of the doubt. */
export const TIMER_QUANTUM_SECONDS = 0.000_1;
/** Network and scheduling slack between the coordinator's clock and the miner's. */
export const WALL_SLACK_SECONDS = 1;

/**
 * Checks a claimed GPU time against the unit's ops and the wall time from lease to result. Pay does not depend
 * on the claim (it is per verified op), but receipts and ops-per-joule figures carry it, so a lie is refused,
 * not clamped: clamping would sign a number the miner never measured.
 * A time of 0 is never a measurement (the browser miner reports at least 1 µs per dispatch).
 */
export function checkGpuSeconds(claimedSeconds: number, ops: bigint, wallSeconds: number): ProtocolError | null {
  const fastest = Number(ops) / MAX_PLAUSIBLE_OPS_PER_SECOND;
  if (claimedSeconds <= 0 || claimedSeconds + TIMER_QUANTUM_SECONDS < fastest) {
    return {
      code: 'implausible-claim',
      message: `claimed ${claimedSeconds} s for ${ops} ops: no device is that fast (${fastest.toExponential(2)} s at ${MAX_PLAUSIBLE_OPS_PER_SECOND / 1e12} TFLOP/s)`,
    };
  }
  if (claimedSeconds > wallSeconds + WALL_SLACK_SECONDS) {
    return {
      code: 'implausible-claim',
      message: `claimed ${claimedSeconds} s of GPU time but only ${wallSeconds.toFixed(3)} s passed between lease and result`,
    };
  }
  return null;
}
