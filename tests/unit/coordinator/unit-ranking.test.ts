import { describe, expect, it } from 'vitest';
import { pickUnit, type UnitCandidate } from '../../../src/coordinator/unit-ranking.ts';

const candidate = (id: string, operandsHeld: number): UnitCandidate => ({ unit: { id, jobId: 'j' }, operandsHeld });

describe('unit ranking', () => {
  it('prefers both held blocks over one, and one over none', () => {
    expect(pickUnit([candidate('none', 0), candidate('one', 1), candidate('both', 2)])).toBe(2);
    expect(pickUnit([candidate('none', 0), candidate('one', 1)])).toBe(1);
  });

  it('keeps the queue order among equals, and has no pick among no candidates', () => {
    expect(pickUnit([candidate('first', 1), candidate('second', 1), candidate('third', 0)])).toBe(0);
    expect(pickUnit([candidate('first', 0), candidate('second', 0)])).toBe(0);
    expect(pickUnit([])).toBe(-1);
  });
});
