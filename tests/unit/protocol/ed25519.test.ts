// Strict Ed25519: keys and signatures that no one holds, or that decode to a point in more than one way, are refused.
import { describe, expect, it } from 'vitest';
import { pointProblem, publicKeyProblem, signatureProblem } from '../../../src/protocol/ed25519.ts';
import { exportPublicKey, generateSigningKeys, sign, verifySignature } from '../../../src/protocol/receipt.ts';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function encode(n: bigint, xSign = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  if (xSign) out[31] |= 0x80;
  return out;
}

function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let b = ((base % P) + P) % P, e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P;
  return result;
}

// y of the order-8 points, from the curve itself: doubling one gives y = 0, so d·y^4 + 2·y^2 - 1 = 0.
const d = (((-121665n * modPow(121666n, P - 2n)) % P) + P) % P;
const Y8 = 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n;

/** Every encoding WebCrypto might decode to one of the 8 points of small order: canonical ones and the others. */
const smallOrder: [string, Uint8Array<ArrayBuffer>][] = [
  ['the identity (0x01 then 31 zero bytes)', encode(1n)],
  ['the point of order 2', encode(P - 1n)],
  ['a point of order 4', encode(0n)],
  ['the other point of order 4', encode(0n, 1)],
  ['a point of order 8', encode(Y8)],
  ['a second point of order 8', encode(Y8, 1)],
  ['a third point of order 8', encode(P - Y8)],
  ['a fourth point of order 8', encode(P - Y8, 1)],
  ['the identity with the sign bit set', encode(1n, 1)],
  ['the point of order 2 with the sign bit set', encode(P - 1n, 1)],
  ['the identity as p + 1', encode(P + 1n)],
  ['the identity as p + 1 with the sign bit set', encode(P + 1n, 1)],
  ['a point of order 4 as p', encode(P)],
  ['a point of order 4 as p with the sign bit set', encode(P, 1)],
];

describe('strict Ed25519 encodings', () => {
  it('knows the y of the points of order 8 from the curve equation', () => {
    expect((d * Y8 ** 4n + 2n * Y8 ** 2n - 1n) % P).toBe(0n);
  });

  it('refuses every small-order and non-canonical encoding as a key, with a sentence', () => {
    for (const [name, key] of smallOrder) expect(publicKeyProblem(key), name).toMatch(/^the key is refused: (it is a point of small order|its encoding is not canonical)/);
    expect(publicKeyProblem(encode(P + 5n))).toMatch(/not canonical/);
  });

  it('accepts the keys WebCrypto makes', async () => {
    for (let i = 0; i < 20; i++) expect(publicKeyProblem(await exportPublicKey((await generateSigningKeys()).publicKey))).toBeUndefined();
  });

  it('refuses a signature whose S is not below the group order, or whose R is of small order', async () => {
    const keys = await generateSigningKeys();
    const message = new TextEncoder().encode('ergon');
    const signature = await sign(keys.privateKey, message);
    expect(signatureProblem(signature)).toBeUndefined();
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]);
    const malleated = new Uint8Array(signature);
    malleated.set(encode(s + L), 32);
    expect(signatureProblem(malleated)).toMatch(/S is not below the group order/);
    expect(await verifySignature(await exportPublicKey(keys.publicKey), malleated, message)).toBe(false);
    const trivial = new Uint8Array(64);
    trivial.set(encode(1n));
    expect(signatureProblem(trivial)).toMatch(/R is refused: it is a point of small order/);
    expect(pointProblem(new Uint8Array(31))).toMatch(/31 bytes/);
  });

  it('verifies no small-order key, whatever small-order R and S = 0 a cheat tries', async () => {
    const message = new TextEncoder().encode('any hello challenge or receipt');
    const accepted: string[] = [];
    for (const [name, key] of smallOrder) {
      for (const [rName, r] of smallOrder) {
        const signature = new Uint8Array(64);
        signature.set(r);
        if (await verifySignature(key, signature, message)) accepted.push(`${name} with R ${rName}`);
      }
    }
    expect(accepted).toEqual([]);
  });
});
