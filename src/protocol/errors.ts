// One error vocabulary for every boundary (data channel, HTTP API, GPU worker): a stable code a program can act on,
// always sent with a sentence a person can read.
export type ErrorCode =
  // framing and messages
  | 'malformed-frame'
  | 'message-too-large'
  | 'malformed-message'
  | 'unsupported-version'
  // identity and leases
  | 'not-authenticated'
  | 'bad-signature'
  | 'unknown-lease'
  | 'lease-expired'
  | 'unknown-kind'
  // results and verification
  | 'shape-mismatch'
  | 'non-finite'
  | 'verification-failed'
  | 'replayed-result'
  | 'implausible-claim'
  // a job's parameters and operands, as a kind parses them
  | 'bad-params'
  | 'bad-shape'
  | 'bad-precision'
  | 'bad-body-length'
  | 'job-too-large'
  | 'product-too-large'
  | 'f16-overflow'
  // onnx models and their inputs
  | 'bad-input'
  | 'bad-dtype'
  | 'unknown-model'
  | 'bad-model'
  | 'model-too-large'
  | 'unsupported-operator'
  // abuse
  | 'rate-limited'
  | 'banned'
  // the miner's engine (the GPU worker and its kinds)
  | 'unsupported-precision'
  | 'device-lost'
  | 'engine-failed'
  | 'cancelled'
  // operands a lease names by hash, as the miner fetches them
  | 'operand-hash-mismatch'
  | 'operand-unavailable'
  // the coordinator's own failures: nothing was written
  | 'storage-busy'
  | 'storage-full'
  | 'storage-failed'
  | 'internal';

export interface ProtocolError {
  code: ErrorCode;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

export const fail = (code: ErrorCode, message: string): { ok: false; error: ProtocolError } => ({
  ok: false,
  error: { code, message },
});

/** An error that carries its code through `throw`, so that it crosses a worker or an API with the code intact. */
export class CodedError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
  }

  get error(): ProtocolError {
    return { code: this.code, message: this.message };
  }
}

/** Any thrown value as a coded error: a CodedError keeps its code, anything else is the given fallback code. */
export function toProtocolError(err: unknown, fallback: ErrorCode = 'internal'): ProtocolError {
  if (err instanceof CodedError) return err.error;
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}
