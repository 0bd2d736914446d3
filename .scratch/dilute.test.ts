import { it } from 'vitest';
import { freivaldsCheck } from '../src/work/gemm/freivalds.ts';
import { operands, product } from '../tests/unit/work/products.ts';
import { seededBytes } from '../tests/helpers/random.ts';
it('dilution', () => {
  for (const [dist, k, cols, cheat] of [['relu', 16384, 8, 'f16-operands'], ['relu', 4096, 8, 'f16-operands'], ['relu', 16384, 16, 'f16-operands'], ['normal', 4096, 8, 'f16-operands'], ['uniform', 1024, 8, 'f16-operands']] as const) {
    const rows = 1024;
    const a = operands(dist, rows * k, 1);
    const b = operands(dist, k * cols, 2);
    const honest = product(a, b, rows, k, cols, 'sequential');
    const bad = product(a.subarray(768 * k), b, 256, k, cols, cheat);
    const c = honest.slice(); c.set(bad, 768 * cols);
    const whole = freivaldsCheck({ a, b, c, rows, depth: k, cols }, seededBytes(3));
    const tile = freivaldsCheck({ a: a.subarray(768 * k), b, c: bad, rows: 256, depth: k, cols }, seededBytes(3));
    console.log(dist, k, cols, cheat, 'span ok', whole.verdict.ok, whole.aggregateFraction.toFixed(2), whole.spotAggregateFraction.toFixed(2), '| tile ok', tile.verdict.ok, tile.aggregateFraction.toFixed(2), tile.spotAggregateFraction.toFixed(2), tile.rowFraction.toFixed(2));
  }
}, 600_000);
