// Which waiting unit a miner gets: the queue offers the units of its oldest job this miner can run (so no job starves
// behind a newer one), and this ranking picks among them. Preferences are compared in order; the queue's own order
// breaks ties. Add a preference by adding a line to PREFERENCES.
import type { AnyWorkKind, UnitBase } from '../work/kind.ts';

/**
 * Operand blocks remembered per session as held, most recent kept: about what a miner's GPU keeps resident (a
 * 4096-deep f32 block is 4 MiB, so 128 MiB of them).
 */
const BLOCKS_REMEMBERED = 32;

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

/** A unit's operand blocks, named across jobs (job id / the kind's key); none for a kind without operand keys. */
export function blocksOf(kind: AnyWorkKind | undefined, unit: UnitBase): string[] {
  const keys = kind?.operandKeys?.(unit) ?? [];
  return keys.map((key) => `${unit.jobId}/${key}`);
}

/**
 * The operand blocks each session of this coordinator was leased, least recent first: what affinity prefers. Kept
 * in memory by either queue, since a session lives on one coordinator; a miner that reconnects starts afresh.
 */
export class BlocksLeased {
  private readonly bySession = new Map<string, Map<string, true>>();

  held(sessionId: string): ReadonlyMap<string, true> | undefined {
    return this.bySession.get(sessionId);
  }

  remember(sessionId: string, blocks: readonly string[]): void {
    if (blocks.length === 0) return;
    let held = this.bySession.get(sessionId);
    if (!held) this.bySession.set(sessionId, (held = new Map()));
    for (const block of blocks) {
      held.delete(block);
      held.set(block, true);
    }
    for (const oldest of held.keys()) {
      if (held.size <= BLOCKS_REMEMBERED) break;
      held.delete(oldest);
    }
  }

  forget(sessionId: string): void {
    this.bySession.delete(sessionId);
  }

  /** The candidate for ranking: how many of the unit's blocks this session holds. */
  candidate(sessionId: string, kind: AnyWorkKind | undefined, unit: UnitBase): UnitCandidate {
    const held = this.bySession.get(sessionId);
    return { unit, operandsHeld: held ? blocksOf(kind, unit).filter((block) => held.has(block)).length : 0 };
  }
}
