// Compact inputs: a uint8 input travels as its bytes, and whoever runs the model (miner or coordinator) turns it into
// the float32 the model takes with a per-channel affine map along axis 1, x -> x * scale[c] + offset[c]. Images move
// four times fewer bytes than as f32. One function, used by every runner, so that all compute the same floats.
import * as v from 'valibot';
import { fail, type Parsed } from '../../protocol/errors.ts';
import { MAX_SHORT_TEXT_CHARS } from '../../protocol/messages.ts';

/** Most channels a normalisation names: an image has 1 to 4, a feature map more. */
export const MAX_NORMALIZE_CHANNELS = 64;

const Finite = v.pipe(v.number(), v.finite());
export const Normalize = v.pipe(
  v.object({
    scale: v.pipe(v.array(Finite), v.minLength(1), v.maxLength(MAX_NORMALIZE_CHANNELS)),
    offset: v.pipe(v.array(Finite), v.minLength(1), v.maxLength(MAX_NORMALIZE_CHANNELS)),
  }),
  v.check((n) => n.scale.length === n.offset.length, 'scale and offset must name the same number of channels'),
);
export type Normalize = v.InferOutput<typeof Normalize>;

/** A normalisation from its JSON (`{"scale":[...],"offset":[...]}`), or why not. */
export function parseNormalize(json: unknown): Parsed<Normalize> {
  if (typeof json !== 'string') return fail('bad-params', 'normalize must be JSON: {"scale":[...],"offset":[...]}, one number per channel');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return fail('bad-params', 'normalize is not JSON; send {"scale":[...],"offset":[...]}, one number per channel');
  }
  const parsed = v.safeParse(Normalize, value);
  if (!parsed.success) return fail('bad-params', `normalize: ${parsed.issues[0].message}; send {"scale":[...],"offset":[...]} with 1 to ${MAX_NORMALIZE_CHANNELS} numbers each`);
  // Each lease carries it as one text parameter: a longer one would make leases no miner accepts.
  const length = JSON.stringify(parsed.output).length;
  if (length > MAX_SHORT_TEXT_CHARS) {
    return fail('bad-params', `normalize is ${length} characters as JSON, over the ${MAX_SHORT_TEXT_CHARS} a lease carries; write its numbers shorter (1/255 as 0.0039216)`);
  }
  return { ok: true, value: parsed.output };
}

/**
 * The float32 values of a uint8 array of this shape ([batch, channels, ...]): x * scale[c] + offset[c], computed in
 * float32 (Math.fround) so that every runner, whatever its language's float width, gets the same bits.
 */
export function normalizeU8(values: Uint8Array, shape: readonly number[], normalize: Normalize): Float32Array {
  const channels = shape[1] ?? 1;
  if (normalize.scale.length !== channels) throw new RangeError(`normalize names ${normalize.scale.length} channels, the input has ${channels}`);
  const inner = shape.slice(2).reduce((n, d) => n * d, 1);
  const out = new Float32Array(values.length);
  // A table per channel: 256 floats, each computed once.
  const tables = normalize.scale.map((scale, c) => {
    const table = new Float32Array(256);
    const s = Math.fround(scale);
    const o = Math.fround(normalize.offset[c]);
    for (let x = 0; x < 256; x++) table[x] = Math.fround(Math.fround(x * s) + o);
    return table;
  });
  for (let at = 0, c = 0; at < values.length; at += inner, c = (c + 1) % channels) {
    const table = tables[c];
    for (let i = at; i < at + inner; i++) out[i] = table[values[i]];
  }
  return out;
}
