// The DTLS certificate an SDP names by its sha-256 fingerprint: what a WebRTC stack checks the other end against.
//
// WebRTC authenticates a data channel's DTLS handshake only against the fingerprint in the remote description, so
// the fingerprint there names the one end that holds that certificate's private key. Anything doubtful (another hash,
// a malformed value, two different certificates) is refused rather than guessed at: which line a stack checks would
// then be its choice, not ours.

const FINGERPRINT_LINE = /^a=fingerprint:(.*)$/i;
const SHA256_VALUE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/i;

export type FingerprintResult = { ok: true; value: Uint8Array<ArrayBuffer> } | { ok: false; problem: string };

/** The sha-256 fingerprint of the one certificate an SDP names, or what is wrong, as words that follow "the SDP". */
export function sdpFingerprint(sdp: string): FingerprintResult {
  const values = new Set<string>();
  for (const line of sdp.split(/\r?\n/)) {
    const attribute = FINGERPRINT_LINE.exec(line.trim());
    if (!attribute) continue;
    const [algorithm, value, ...rest] = attribute[1].trim().split(/[ \t]+/);
    if (algorithm.toLowerCase() !== 'sha-256') return { ok: false, problem: `names a fingerprint by ${algorithm.slice(0, 16)}, not sha-256` };
    if (rest.length > 0 || !SHA256_VALUE.test(value ?? '')) return { ok: false, problem: 'has a malformed sha-256 fingerprint' };
    values.add(value.toUpperCase());
  }
  if (values.size === 0) return { ok: false, problem: 'names no DTLS certificate fingerprint' };
  if (values.size > 1) return { ok: false, problem: `names ${values.size} different DTLS certificate fingerprints` };
  const [hex] = values;
  return { ok: true, value: Uint8Array.from(hex.split(':'), (pair) => parseInt(pair, 16)) };
}

/** A fingerprint as SDP writes it (AB:CD:...), for messages a person reads. */
export function fingerprintText(fingerprint: Uint8Array): string {
  return Array.from(fingerprint, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}
