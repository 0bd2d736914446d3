// Plausibility of what a miner claims about its work, pure: a GPU time no hardware could achieve is refused.
import type { ProtocolError } from '../protocol/errors.ts';

/**
 * No single device does f32 GEMM faster than this: an H100 peaks near 67 TFLOP/s in f32 (about 500 with TF32),
 * so 2 PFLOP/s leaves a wide margin and still catches "0 seconds" for any unit big enough to time.
 */
export const MAX_PLAUSIBLE_OPS_PER_SECOND = 2e15;
/** Browsers quantize timers to 100 µs; a claim this close to the bound is given the benefit of the doubt. */
export const TIMER_SLACK_SECONDS = 0.000_2;
/** Network and scheduling slack between the coordinator's clock and the miner's. */
export const WALL_SLACK_SECONDS = 1;

/**
 * Checks a claimed GPU time against the unit's ops and the wall time from lease to result. Pay does not depend
 * on the claim (it is per verified op), but receipts and ops-per-joule figures do, so a lie is refused, not clamped.
 */
export function checkGpuSeconds(claimedSeconds: number, ops: bigint, wallSeconds: number): ProtocolError | null {
  const fastest = Number(ops) / MAX_PLAUSIBLE_OPS_PER_SECOND;
  if (claimedSeconds + TIMER_SLACK_SECONDS < fastest) {
    return {
      code: 'implausible-claim',
      message: `claimed ${claimedSeconds} s for ${ops} ops; no device is faster than ${fastest.toExponential(2)} s for that`,
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
