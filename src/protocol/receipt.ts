// Canonical bytes of receipts, challenges and hellos, and their Ed25519 signatures (WebCrypto, both ends).
import { publicKeyProblem, signatureProblem } from './ed25519.ts';
import type { ChallengeMessage, Receipt, ReceiptBody } from './messages.ts';

const RECEIPT_DOMAIN = 'ergon-receipt-v1';
const CHALLENGE_DOMAIN = 'ergon-challenge-v1';
const HELLO_DOMAIN = 'ergon-hello-v1';
const utf8 = new TextEncoder();

/** Appends fields in a fixed order with explicit lengths, so signer and verifiers encode identically. */
class CanonicalWriter {
  private readonly parts: Uint8Array[] = [];

  text(value: string): this {
    const bytes = utf8.encode(value);
    return this.u32(bytes.byteLength).bytes(bytes);
  }
  bytes(value: Uint8Array): this {
    this.parts.push(value);
    return this;
  }
  u32(value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    return this.bytes(b);
  }
  u64(value: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    return this.bytes(b);
  }
  f64(value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    return this.bytes(b);
  }
  finish(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

export function receiptBytes(r: ReceiptBody): Uint8Array<ArrayBuffer> {
  return new CanonicalWriter()
    .text(RECEIPT_DOMAIN)
    .text(r.unitId)
    .text(r.jobId)
    .text(r.kind)
    .bytes(r.minerKey)
    .bytes(r.coordinatorKey)
    .u64(r.ops)
    .u64(r.microCredits)
    .f64(r.gpuSeconds)
    .f64(r.joules)
    .text(r.joulesSource)
    .u64(r.issuedAtMs)
    .finish();
}

/** The signed part of a coordinator's challenge. */
export type ChallengeBody = Pick<ChallengeMessage, 'coordinatorKey' | 'nonce' | 'heartbeatMs'>;

/**
 * What a coordinator signs in its challenge: this connection's nonce and heartbeat under its key, and the sha-256
 * fingerprint of the DTLS certificate it presents on this data channel. Whoever relays or squats the channel holds
 * another certificate, so the miner, checking against the fingerprint its own WebRTC stack authenticated, refuses it.
 */
export function challengeBytes(c: ChallengeBody, dtlsFingerprint: Uint8Array): Uint8Array<ArrayBuffer> {
  return new CanonicalWriter()
    .text(CHALLENGE_DOMAIN)
    .bytes(c.coordinatorKey)
    .bytes(c.nonce)
    .u32(c.heartbeatMs)
    .u32(dtlsFingerprint.byteLength)
    .bytes(dtlsFingerprint)
    .finish();
}

export function signChallenge(privateKey: CryptoKey, body: ChallengeBody, dtlsFingerprint: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sign(privateKey, challengeBytes(body, dtlsFingerprint));
}

/** Whether the challenge's key signed it over this fingerprint; false when it is unsigned. */
export async function verifyChallenge(challenge: ChallengeBody & { signature?: Uint8Array }, dtlsFingerprint: Uint8Array): Promise<boolean> {
  if (!challenge.signature) return false;
  return verifySignature(challenge.coordinatorKey, challenge.signature, challengeBytes(challenge, dtlsFingerprint));
}

/** What a miner signs to prove it holds its wallet key: bound to this connection's nonce and this coordinator. */
export function helloChallengeBytes(nonce: Uint8Array, coordinatorKey: Uint8Array): Uint8Array<ArrayBuffer> {
  return new CanonicalWriter().text(HELLO_DOMAIN).bytes(nonce).bytes(coordinatorKey).finish();
}

const ED25519 = { name: 'Ed25519' } as const;

export async function generateSigningKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportPublicKey(key: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.exportKey('raw', key));
}

export async function sign(privateKey: CryptoKey, bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, bytes));
}

/**
 * False for a bad signature, a key that is not a valid Ed25519 point, and anything strict RFC 8032 would not sign:
 * a key or R of small order, a non-canonical encoding, S not below the group order. Never throws on bad input.
 */
export async function verifySignature(publicKey: Uint8Array, signature: Uint8Array, bytes: Uint8Array<ArrayBuffer>): Promise<boolean> {
  if (publicKeyProblem(publicKey) || signatureProblem(signature)) return false;
  try {
    const key = await crypto.subtle.importKey('raw', copy(publicKey), ED25519, false, ['verify']);
    return await crypto.subtle.verify(ED25519, key, copy(signature), bytes);
  } catch {
    return false;
  }
}

export async function signReceipt(privateKey: CryptoKey, body: ReceiptBody): Promise<Receipt> {
  return { ...body, signature: await sign(privateKey, receiptBytes(body)) };
}

/** Checks a receipt's signature against the coordinator key it names. */
export function verifyReceipt(receipt: Receipt): Promise<boolean> {
  return verifySignature(receipt.coordinatorKey, receipt.signature, receiptBytes(receipt));
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
