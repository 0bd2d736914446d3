// The wallet's export file: its key pair and receipts as JSON (bytes in hex, integers as decimal strings), and
// the parser that turns such a file back into typed values, refusing anything malformed.
import * as v from 'valibot';
import { publicKeyProblem } from '../protocol/ed25519.ts';
import type { Receipt } from '../protocol/messages.ts';
import { toHex } from '../protocol/receipt.ts';

export const WALLET_FILE_FORMAT = 'ergon-wallet';
export const WALLET_FILE_VERSION = 1;
/** A file bigger than this is refused before it is read (a receipt is about 700 bytes of JSON: ~90,000 fit). */
export const MAX_WALLET_FILE_BYTES = 64 * 1024 * 1024;

const Hex = (bytes: number) => v.pipe(v.string(), v.regex(new RegExp(`^[0-9a-f]{${2 * bytes}}$`), `expected ${bytes} bytes in hex`));
/** A wallet key no one holds (small order) or encoded two ways would let anyone claim the file's earnings. */
const StrictPublicKey = v.pipe(
  Hex(32),
  v.check((hex) => publicKeyProblem(fromHex(hex)) === undefined, (issue) => publicKeyProblem(fromHex(String(issue.input))) ?? 'the key is refused'),
);
const Decimal = v.pipe(v.string(), v.regex(/^\d{1,20}$/, 'expected a decimal integer'));

const ReceiptJson = v.object({
  unitId: v.string(),
  jobId: v.string(),
  kind: v.string(),
  minerKey: Hex(32),
  coordinatorKey: Hex(32),
  ops: Decimal,
  microCredits: Decimal,
  gpuSeconds: v.number(),
  joules: v.number(),
  joulesSource: v.string(),
  issuedAtMs: Decimal,
  signature: Hex(64),
});
type ReceiptJson = v.InferOutput<typeof ReceiptJson>;

const WalletFile = v.object({
  format: v.literal(WALLET_FILE_FORMAT),
  version: v.literal(WALLET_FILE_VERSION),
  exportedAtMs: v.number(),
  publicKey: StrictPublicKey,
  /** PKCS#8 of the Ed25519 private key, base64: whoever holds this file holds the wallet. */
  privateKeyPkcs8: v.pipe(v.string(), v.base64()),
  receipts: v.array(ReceiptJson),
});
export type WalletFile = v.InferOutput<typeof WalletFile>;

export function receiptToJson(r: Receipt): ReceiptJson {
  return {
    unitId: r.unitId,
    jobId: r.jobId,
    kind: r.kind,
    minerKey: toHex(r.minerKey),
    coordinatorKey: toHex(r.coordinatorKey),
    ops: r.ops.toString(),
    microCredits: r.microCredits.toString(),
    gpuSeconds: r.gpuSeconds,
    joules: r.joules,
    joulesSource: r.joulesSource,
    issuedAtMs: r.issuedAtMs.toString(),
    signature: toHex(r.signature),
  };
}

/** The receipt's fields as the wire has them; the wallet validates and verifies it like any other. */
export function receiptFromJson(r: ReceiptJson): unknown {
  return {
    ...r,
    minerKey: fromHex(r.minerKey),
    coordinatorKey: fromHex(r.coordinatorKey),
    ops: BigInt(r.ops),
    microCredits: BigInt(r.microCredits),
    issuedAtMs: BigInt(r.issuedAtMs),
    signature: fromHex(r.signature),
  };
}

export type ParsedWalletFile = { ok: true; file: WalletFile } | { ok: false; error: string };

export function parseWalletFile(text: string): ParsedWalletFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const parsed = v.safeParse(WalletFile, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join('.') ?? '';
    return { ok: false, error: `not an Ergon wallet file: ${path ? `${path}: ` : ''}${issue.message}` };
  }
  return { ok: true, file: parsed.output };
}

export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
