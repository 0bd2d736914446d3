// The audit rule, pure: every unit for a new miner, a rate that falls with audits passed in a row, never below the
// floor; draws from the injected random source that audit at that rate; and the bond kept through a passed audit.
import { describe, expect, it } from 'vitest';
import { AUDIT_FLOOR, auditProbability, bondUnits, drawAudit } from '../../../src/coordinator/audits.ts';
import { seededBytes } from '../../helpers/random.ts';

describe('audit rule', () => {
  it('audits every unit of a new miner, then less as its record grows, never below the floor', () => {
    expect(auditProbability(0)).toBe(1);
    expect(auditProbability(1)).toBe(1);
    const rates = Array.from({ length: 200 }, (_, n) => auditProbability(n));
    for (let n = 1; n < rates.length; n++) expect(rates[n]).toBeLessThanOrEqual(rates[n - 1]);
    expect(auditProbability(2)).toBeCloseTo(2 / 3, 12);
    expect(auditProbability(9)).toBeCloseTo(0.2, 12);
    expect(Math.min(...rates)).toBe(AUDIT_FLOOR);
    expect(AUDIT_FLOOR).toBe(0.05);
    expect(auditProbability(38)).toBeGreaterThan(AUDIT_FLOOR);
    expect(auditProbability(39)).toBe(AUDIT_FLOOR);
    expect(auditProbability(1_000_000)).toBe(AUDIT_FLOOR);
  });

  it('draws audits at the rule\'s rate from the injected random source, the same draws for the same seed', () => {
    const audited = (passed: number, seed: number, draws = 20_000) => {
      const random = seededBytes(seed);
      let n = 0;
      for (let i = 0; i < draws; i++) if (drawAudit(random, auditProbability(passed))) n++;
      return n;
    };
    expect(audited(0, 1)).toBe(20_000);
    expect(audited(1, 1)).toBe(20_000);
    // Binomial(20000, p): these bounds are over 6 standard deviations wide, and the seed makes them exact anyway.
    expect(audited(3, 2) / 20_000).toBeCloseTo(0.5, 1);
    expect(Math.abs(audited(100, 3) / 20_000 - AUDIT_FLOOR)).toBeLessThan(0.01);
    expect(audited(100, 3)).toBe(audited(100, 3));
    expect(audited(100, 3)).toBeGreaterThan(0);
    // Never audits: a source of all ones is the largest draw, above every rate below 1.
    const ones = (into: Uint8Array) => into.fill(255);
    expect(drawAudit(ones, 0.999)).toBe(false);
    expect(drawAudit(ones, 1)).toBe(true);
    expect(drawAudit((into) => into.fill(0), AUDIT_FLOOR)).toBe(true);
  });

  it('keeps a bond of B = ceil(2/p) units, the smallest whose expected forfeit p x B is at least 2 units\' pay', () => {
    expect([0, 1, 2, 3, 9, 19, 38, 39, 40, 1_000_000].map(bondUnits)).toEqual([2, 2, 3, 4, 10, 20, 39, 40, 40, 40]);
    for (let n = 0; n < 500; n++) {
      const p = auditProbability(n);
      const b = bondUnits(n);
      expect(Number.isInteger(b)).toBe(true);
      // Up to float rounding in p itself (p x B is exactly 2 wherever 2/p is a whole number).
      expect(p * b, `n = ${n}`).toBeGreaterThanOrEqual(2 - 1e-12);
      expect(p * (b - 1), `n = ${n}`).toBeLessThan(2);
      if (n > 0) expect(b).toBeGreaterThanOrEqual(bondUnits(n - 1));
    }
  });
});
