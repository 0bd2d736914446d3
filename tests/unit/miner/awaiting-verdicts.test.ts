// Results awaiting verdicts: a unit's settles with its one verdict, a span's with a receipt for each part or with one
// rejection of the whole; a verdict nothing awaits settles nothing.
import { describe, expect, it } from 'vitest';
import { AwaitingVerdicts } from '../../../src/miner/awaiting-verdicts.ts';

const sent = { ops: 400n, gpuSeconds: 0.5 };

describe('AwaitingVerdicts', () => {
  it('settles a unit with its verdict', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('u', sent);
    expect(awaiting.settle('u')).toEqual({ unitId: 'u', sent, units: 1, done: true });
    expect(awaiting.size).toBe(0);
    expect(awaiting.settle('u')).toBeUndefined();
  });

  it('settles a span once every part has its receipt, in any order', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:3', sent, ['a', 'b', 'c']);
    expect(awaiting.settle('b')).toEqual({ unitId: 's:3', sent, units: 3, done: false });
    expect(awaiting.settle('b')).toBeUndefined(); // the same receipt twice counts once
    expect(awaiting.settle('c')).toMatchObject({ done: false });
    expect(awaiting.size).toBe(1);
    expect(awaiting.settle('a')).toEqual({ unitId: 's:3', sent, units: 3, done: true });
    expect(awaiting.size).toBe(0);
  });

  it('settles a span at once with a rejection of the whole, and forgets its parts', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:2', sent, ['a', 'b']);
    expect(awaiting.settle('s:2')).toEqual({ unitId: 's:2', sent, units: 2, done: true });
    expect(awaiting.settle('a')).toBeUndefined();
  });
});
