// Message bytes <-> typed messages: msgpack for the envelope, schemas for trust.
import { decode, encode } from '@msgpack/msgpack';
import * as v from 'valibot';
import { fail, type Parsed } from './errors.ts';
import { PROTOCOL_VERSION } from './version.ts';
import { CoordinatorMessage, MinerMessage } from './messages.ts';

const MSGPACK_OPTIONS = { useBigInt64: true } as const;

export function encodeMessage(message: object): Uint8Array {
  return encode(message, MSGPACK_OPTIONS);
}

function parseWith<S extends v.GenericSchema>(schema: S, bytes: Uint8Array): Parsed<v.InferOutput<S>> {
  let raw: unknown;
  try {
    raw = decode(bytes, MSGPACK_OPTIONS);
  } catch (err) {
    return fail('malformed-message', `message is not valid msgpack: ${(err as Error).message}`);
  }
  if (typeof raw === 'object' && raw !== null && 'v' in raw && raw.v !== PROTOCOL_VERSION) {
    return fail('unsupported-version', `protocol version ${String(raw.v)} is not supported; this side speaks ${PROTOCOL_VERSION}`);
  }
  const result = v.safeParse(schema, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue) ?? '(message)';
    return fail('malformed-message', `${path}: ${issue.message}`);
  }
  return { ok: true, value: result.output };
}

/** Parses what a miner sent. Never throws on bad input. */
export const parseMinerMessage = (bytes: Uint8Array): Parsed<MinerMessage> => parseWith(MinerMessage, bytes);

/** Parses what a coordinator sent. Never throws on bad input. */
export const parseCoordinatorMessage = (bytes: Uint8Array): Parsed<CoordinatorMessage> =>
  parseWith(CoordinatorMessage, bytes);
