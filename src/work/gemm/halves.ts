// f32 <-> f16 (IEEE half) for f16 work: a job's operands are rounded to halves once, when it is submitted.
import { Float16Array, getFloat16 } from '@petamoriken/float16';

/**
 * Rounds each value to the nearest half (ties to even); beyond +-65504 it becomes infinite. Subnormal halves
 * (|x| < 2^-14) become signed zero: WGSL lets a device flush them to zero, and a job's operands must mean the same
 * on every miner and to the verifier, which otherwise rejects an honest device that flushed a row of small values.
 */
export function toHalves(values: Float32Array): Uint16Array<ArrayBuffer> {
  const halves = new Uint16Array(new Float16Array(values).buffer);
  for (let i = 0; i < halves.length; i++) if ((halves[i] & 0x7c00) === 0) halves[i] &= 0x8000;
  return halves;
}

let halfTable: Float32Array | undefined;

/** The exact f32 value of each half, by lookup: 65536 entries, built once (the library's iterator is ~50x slower). */
export function fromHalves(halves: Uint16Array): Float32Array<ArrayBuffer> {
  const table = (halfTable ??= buildTable());
  const values = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) values[i] = table[halves[i]];
  return values;
}

function buildTable(): Float32Array {
  const table = new Float32Array(65_536);
  const view = new DataView(new ArrayBuffer(2));
  for (let bits = 0; bits < table.length; bits++) {
    view.setUint16(0, bits, true);
    table[bits] = getFloat16(view, 0, true);
  }
  return table;
}

/** True when no half is infinite or NaN (all exponent bits set): what an f32 beyond +-65504 rounds to. */
export function allFiniteHalves(halves: Uint16Array): boolean {
  for (let i = 0; i < halves.length; i++) if ((halves[i] & 0x7c00) === 0x7c00) return false;
  return true;
}
