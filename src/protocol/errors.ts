// Stable error codes that either side can act on, each sent with a human sentence.
export type ErrorCode =
  | 'malformed-frame'
  | 'message-too-large'
  | 'malformed-message'
  | 'unsupported-version'
  | 'not-authenticated'
  | 'bad-signature'
  | 'unknown-lease'
  | 'lease-expired'
  | 'shape-mismatch'
  | 'non-finite'
  | 'verification-failed'
  | 'replayed-result'
  | 'implausible-claim'
  | 'rate-limited'
  | 'banned'
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
