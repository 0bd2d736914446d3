import { describe, expect, it } from 'vitest';
import { KeyTurns } from '../../../src/coordinator/key-turns.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('KeyTurns', () => {
  it('runs one key\'s tasks one at a time in order, other keys\' alongside, and goes on after a failure', async () => {
    const turns = new KeyTurns();
    const log: string[] = [];
    const task = (name: string, fail = false) => async () => {
      log.push(`${name} start`);
      await tick();
      log.push(`${name} end`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = Promise.allSettled([turns.run('k', task('a1', true)), turns.run('k', task('a2')), turns.run('other', task('b'))]);
    expect(turns.size).toBe(2);
    const settled = await results;
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(log.indexOf('a2 start')).toBeGreaterThan(log.indexOf('a1 end'));
    expect(log.indexOf('b start')).toBeLessThan(log.indexOf('a1 end'));
    await tick();
    expect(turns.size).toBe(0);
  });
});
