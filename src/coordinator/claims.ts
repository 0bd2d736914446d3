// Plausibility of what a miner claims about its work, pure: a GPU time no hardware could achieve is refused.
import type { ProtocolError } from '../protocol/errors.ts';

/**
 * No device runs f32 arithmetic through WebGPU faster than this: WebGPU has no tensor cores, and an H100's plain f32
 * peak is about 67 TFLOP/s, so 200 TFLOP/s leaves a 3x margin.
 */
export const MAX_PLAUSIBLE_OPS_PER_SECOND = 2e14;
/**
 * The shortest GPU time a miner may claim for any unit: the browser miner reports at least 1 µs per dispatch, so a
 * smaller figure (1e-9 s, 5e-324 s) was never measured.
 */
export const MIN_CLAIM_SECONDS = 0.000_001;
/**
 * The miner's GPU time for a unit lies inside the coordinator's wall time from sending its lease to receiving its
 * result, which also holds both transfers: a claim may exceed that wall time only by the two clocks' resolution and
 * drift, 10 ms plus 1%.
 */
export const WALL_SLACK_SECONDS = 0.01;
export const WALL_DRIFT = 0.01;

/**
 * Checks a claimed GPU time against the unit's ops and the wall time from lease to result. Pay does not depend
 * on the claim (it is per verified op), but receipts and ops-per-joule figures carry it, so a lie is refused,
 * not clamped: clamping would sign a number the miner never measured.
 * Under MIN_CLAIM_SECONDS, or under the unit's ops at the fastest plausible speed, is impossible. No timer quantum
 * is allowed for: the floor is a third of any real device's time, and a GPU timestamp rounded down by a quantum q
 * still keeps at least q (the miner falls back to its submit-to-completion time, never less than the real one, when
 * the timestamps read 0), which is above a third of any time under 1.5 q.
 */
export function checkGpuSeconds(claimedSeconds: number, ops: bigint, wallSeconds: number): ProtocolError | null {
  const fastest = Number(ops) / MAX_PLAUSIBLE_OPS_PER_SECOND;
  if (claimedSeconds < MIN_CLAIM_SECONDS || claimedSeconds < fastest) {
    return {
      code: 'implausible-claim',
      message: `claimed ${claimedSeconds} s for ${ops} ops: no device is that fast (${fastest.toExponential(2)} s at ${MAX_PLAUSIBLE_OPS_PER_SECOND / 1e12} TFLOP/s)`,
    };
  }
  if (claimedSeconds > wallSeconds * (1 + WALL_DRIFT) + WALL_SLACK_SECONDS) {
    return {
      code: 'implausible-claim',
      message: `claimed ${claimedSeconds} s of GPU time but only ${wallSeconds.toFixed(3)} s passed between lease and result`,
    };
  }
  return null;
}
