// Results awaiting verdicts: a unit's settles with its one verdict, a span's with a verdict on each part or with one
// rejection of the whole; a verdict nothing awaits settles nothing.
import { describe, expect, it } from 'vitest';
import { AwaitingVerdicts } from '../../../src/miner/awaiting-verdicts.ts';

const sent = { ops: 400n, gpuSeconds: 0.5 };

describe('AwaitingVerdicts', () => {
  it('settles a unit with its verdict', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('u', sent);
    expect(awaiting.settle('u')).toEqual({ unitId: 'u', sent, units: 1, done: true, accepted: 1, rejected: 0, unstored: 0 });
    expect(awaiting.size).toBe(0);
    expect(awaiting.settle('u')).toBeUndefined();
  });

  it('settles a span once every part has its receipt, in any order', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:3', sent, ['a', 'b', 'c']);
    expect(awaiting.settle('b')).toEqual({ unitId: 's:3', sent, units: 3, done: false, accepted: 1, rejected: 0, unstored: 0 });
    expect(awaiting.settle('b')).toBeUndefined(); // the same receipt twice counts once
    expect(awaiting.settle('c')).toMatchObject({ done: false });
    expect(awaiting.size).toBe(1);
    expect(awaiting.settle('a')).toEqual({ unitId: 's:3', sent, units: 3, done: true, accepted: 3, rejected: 0, unstored: 0 });
    expect(awaiting.size).toBe(0);
  });

  it('settles a span at once with a rejection of the whole, and forgets its parts', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:2', sent, ['a', 'b']);
    expect(awaiting.settle('s:2', 'rejected', 'wrong shape')).toEqual({ unitId: 's:2', sent, units: 2, done: true, accepted: 0, rejected: 2, unstored: 0, reason: 'wrong shape' });
    expect(awaiting.settle('a')).toBeUndefined();
  });

  it('settles a span whose parts were accepted in part: each part counted once, as accepted or refused', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:3', sent, ['a', 'b', 'c']);
    // Receipts for two parts; the third's credit could not be stored, and the coordinator says so.
    expect(awaiting.settle('a')).toMatchObject({ done: false, accepted: 1, rejected: 0, unstored: 0 });
    expect(awaiting.settle('c')).toMatchObject({ done: false, accepted: 2, rejected: 0 });
    expect(awaiting.settle('b', 'rejected', 'the disk is full')).toEqual({ unitId: 's:3', sent, units: 3, done: true, accepted: 2, rejected: 1, unstored: 0, reason: 'the disk is full' });
    expect(awaiting.size).toBe(0);
  });

  it('remembers a part whose receipt the page could not store, so that the result is kept and sent again', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:2', sent, ['a', 'b']);
    expect(awaiting.settle('a', 'unstored', 'storage full')).toMatchObject({ done: false, rejected: 1, unstored: 1 });
    expect(awaiting.settle('b')).toMatchObject({ done: true, accepted: 1, rejected: 1, unstored: 1 });
  });

  it('counts a whole rejection after some parts\' receipts only for the parts left', () => {
    const awaiting = new AwaitingVerdicts();
    awaiting.add('s:3', sent, ['a', 'b', 'c']);
    awaiting.settle('a');
    expect(awaiting.settle('s:3', 'rejected', 'lease ended')).toMatchObject({ done: true, accepted: 1, rejected: 2, unstored: 0 });
  });
});
