// Which waiting unit a miner gets: the queue offers the units of its oldest job this miner can run (so no job starves
// behind a newer one), and this ranking picks among them. Preferences are compared in order; the queue's own order
// breaks ties. Add a preference by adding a line to PREFERENCES.
import type { UnitBase } from '../work/kind.ts';

/** A waiting unit as the ranking sees it, for one miner. */
export interface UnitCandidate {
  unit: UnitBase;
  /** How many of the unit's operand blocks this miner was leased before (and so likely holds): fewer bytes to move. */
  operandsHeld: number;
}

/** Each returns a number, higher preferred; the first that differs decides. */
export const PREFERENCES: readonly ((candidate: UnitCandidate) => number)[] = [
  // Affinity: a unit whose blocks the miner holds moves no bytes for them; both beats one beats none.
  (candidate) => candidate.operandsHeld,
];

/** The index of the preferred candidate: the best by PREFERENCES, the earliest among equals; -1 when there is none. */
export function pickUnit(candidates: readonly UnitCandidate[]): number {
  let best = -1;
  for (let i = 0; i < candidates.length; i++) {
    if (best < 0 || compare(candidates[i], candidates[best]) > 0) best = i;
  }
  return best;
}

function compare(a: UnitCandidate, b: UnitCandidate): number {
  for (const preference of PREFERENCES) {
    const difference = preference(a) - preference(b);
    if (difference !== 0) return difference;
  }
  return 0;
}
