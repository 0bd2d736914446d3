// Strict Ed25519 encodings: what WebCrypto's RFC 8032 verification lets through, refused before it is asked.
//
// WebCrypto (OpenSSL in Node, BoringSSL in Chromium) accepts a public key of small order, and then a signature
// with R of small order and S = 0 verifies for any message: a key nobody holds the secret of, that anyone can
// sign for. It also decodes non-canonical encodings (y >= p) as the point they reduce to. Neither check needs
// curve arithmetic, only comparisons of the encoded numbers, so they are written here rather than pulling in a
// second Ed25519 implementation: the curve maths stays WebCrypto's, on both ends.

/** The field prime 2^255 - 19. */
const P = 2n ** 255n - 19n;
/** The order of the prime subgroup: a canonical S is below it (RFC 8032, section 5.1.7). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
/**
 * y of the points of order 8 are Y8 and p - Y8 (the roots of d·y^4 + 2·y^2 - 1 = 0, since doubling them gives
 * y = 0); the unit test checks this against the curve's d.
 */
const Y8 = 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n;
/**
 * The y of every point in the torsion subgroup (the 8 points of small order): the identity (1), order 2 (-1),
 * order 4 (0, both signs of x) and order 8 (±Y8, both signs of x). A point's y fixes it up to the sign of x,
 * and -Q has the order of Q, so a canonical y outside this set is not of small order.
 */
const SMALL_ORDER_Y: ReadonlySet<bigint> = new Set([1n, P - 1n, 0n, Y8, P - Y8]);

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** Why these 32 bytes are not a point to trust as a key or as R, or undefined if the encoding is strict. */
export function pointProblem(encoded: Uint8Array): string | undefined {
  if (encoded.byteLength !== ED25519_PUBLIC_KEY_BYTES) return `it is ${encoded.byteLength} bytes, not ${ED25519_PUBLIC_KEY_BYTES}`;
  const y = littleEndian(encoded) & (2n ** 255n - 1n); // the top bit is the sign of x
  if (y >= P) return 'its encoding is not canonical (y is not below the field prime)';
  if (SMALL_ORDER_Y.has(y)) return 'it is a point of small order, whose secret anyone knows';
  return undefined;
}

/** Why a public key is refused, as a sentence a person can read, or undefined if it may be verified against. */
export function publicKeyProblem(key: Uint8Array): string | undefined {
  const problem = pointProblem(key);
  return problem && `the key is refused: ${problem}`;
}

/** Why a signature is refused before verification (its R and S encodings), or undefined. */
export function signatureProblem(signature: Uint8Array): string | undefined {
  if (signature.byteLength !== ED25519_SIGNATURE_BYTES) return `the signature is ${signature.byteLength} bytes, not ${ED25519_SIGNATURE_BYTES}`;
  const r = pointProblem(signature.subarray(0, 32));
  if (r) return `the signature's R is refused: ${r}`;
  if (littleEndian(signature.subarray(32)) >= L) return 'the signature is not canonical (S is not below the group order)';
  return undefined;
}

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}
