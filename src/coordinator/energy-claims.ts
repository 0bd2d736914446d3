// Plausibility of a miner's energy claim, pure: joules no device could have spent (or saved) are not signed.
// Pay never depends on the claim; an implausible one is dropped (the receipt says 'none') with the reason.
import type { EnergyMethod, UnitEnergy } from '../protocol/energy.ts';
import type { JoulesSource } from '../protocol/messages.ts';

/**
 * No device does more useful operations per joule than this: an H100's dense f16 tensor peak is about 1.4 TFLOP/J
 * at 700 W, and WebGPU f32 work is far below that, so 2 TFLOP/J is beyond any known device.
 */
export const MAX_PLAUSIBLE_OPS_PER_JOULE = 2e12;
/**
 * The most average power each method may report over a unit. The probe and a wall meter can see a whole machine
 * (8 GPUs at 700 W and their host stay under 10 kW); a battery-powered device draws under 250 W; an estimate is one
 * adapter's board power, and no single adapter's exceeds 1.5 kW.
 */
export const MAX_WATTS: Record<EnergyMethod, number> = {
  'nvml-energy': 10_000,
  'nvml-power': 10_000,
  rapl: 10_000,
  'hwmon-energy': 10_000,
  'hwmon-power': 10_000,
  meter: 10_000,
  battery: 250,
  estimate: 1_500,
};
/** Two clocks (the miner's and the coordinator's) bound the interval: their resolution and drift, as for GPU time. */
const WALL_SLACK_SECONDS = 0.01;

/** What is signed and stored: the figures, or none with the reason they were refused. */
export interface EnergyVerdict {
  joules: number;
  joulesSource: JoulesSource;
  uncertaintyJoules: number;
  aboveIdleJoules: number | null;
  /** Why a claim was dropped; null when accepted or when none was made. */
  refused: string | null;
}

const NONE: EnergyVerdict = { joules: 0, joulesSource: 'none', uncertaintyJoules: 0, aboveIdleJoules: null, refused: null };

/**
 * Weighs a unit's energy claim against its verified ops and the coordinator's wall time from lease to result (the
 * miner measured its joules over an interval inside that one). Refused: no joules for a method, more ops per joule
 * than any device does, an interval longer than lease to result, more average watts over it than the method can
 * see, an idle-adjusted figure above the total.
 */
export function checkEnergy(claim: UnitEnergy | undefined, ops: bigint, wallSeconds: number): EnergyVerdict {
  if (!claim) return NONE;
  const refuse = (reason: string): EnergyVerdict => ({ ...NONE, refused: reason });
  const { joules, method } = claim;
  if (joules <= 0) return refuse(`claimed 0 J by ${method}: a unit that ran spent energy`);
  const opsPerJoule = Number(ops) / joules;
  if (opsPerJoule > MAX_PLAUSIBLE_OPS_PER_JOULE) {
    return refuse(`claimed ${joules} J for ${ops} ops: ${(opsPerJoule / 1e9).toFixed(0)} GFLOP/J is beyond any device (${MAX_PLAUSIBLE_OPS_PER_JOULE / 1e9} GFLOP/J)`);
  }
  if (claim.seconds > wallSeconds + WALL_SLACK_SECONDS) {
    return refuse(`claimed joules over ${claim.seconds} s but only ${wallSeconds.toFixed(3)} s passed between lease and result`);
  }
  if (claim.seconds <= 0 || joules / claim.seconds > MAX_WATTS[method]) {
    return refuse(`claimed ${joules} J by ${method} over ${claim.seconds} s: over ${MAX_WATTS[method]} W, more than ${method} can see`);
  }
  if (claim.aboveIdleJoules !== undefined && claim.aboveIdleJoules > joules) {
    return refuse(`claimed ${claim.aboveIdleJoules} J above idle out of ${joules} J in all`);
  }
  return { joules, joulesSource: method, uncertaintyJoules: claim.uncertaintyJoules, aboveIdleJoules: claim.aboveIdleJoules ?? null, refused: null };
}
