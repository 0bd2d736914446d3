// The fleet's list of coordinators, signed by the fleet key: which coordinator keys sign receipts for one fleet, and
// where miners can reach them when their own coordinator dies. Pure: both ends use it.
import * as v from 'valibot';
import { sign, toHex, verifySignature } from './receipt.ts';

const Hex32 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const Hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{128}$/));

export const FleetCoordinator = v.object({
  /** hex of the coordinator's receipt-signing key */
  key: Hex32,
  url: v.pipe(v.string(), v.maxLength(512), v.url()),
});
export type FleetCoordinator = v.InferOutput<typeof FleetCoordinator>;

/** What GET /api/fleet answers. */
export const SignedFleetList = v.object({
  /** hex of the fleet's key, which the wallet pins */
  fleetKey: Hex32,
  coordinators: v.pipe(v.array(FleetCoordinator), v.maxLength(256)),
  issuedAtMs: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** hex Ed25519 signature by the fleet key over fleetListBytes */
  signature: Hex64,
});
export type SignedFleetList = v.InferOutput<typeof SignedFleetList>;

const DOMAIN = 'ergon-fleet-list-v1';

/** Canonical bytes: a domain tag, then the coordinators sorted by key, each as key and url, then the time. */
export function fleetListBytes(fleetKey: string, coordinators: readonly FleetCoordinator[], issuedAtMs: number): Uint8Array<ArrayBuffer> {
  const sorted = [...coordinators].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((c) => [c.key, c.url]);
  return new TextEncoder().encode(JSON.stringify([DOMAIN, fleetKey, sorted, issuedAtMs]));
}

export async function signFleetList(privateKey: CryptoKey, fleetKey: Uint8Array, coordinators: readonly FleetCoordinator[], issuedAtMs: number): Promise<SignedFleetList> {
  const key = toHex(fleetKey);
  const signature = await sign(privateKey, fleetListBytes(key, coordinators, issuedAtMs));
  return { fleetKey: key, coordinators: [...coordinators], issuedAtMs, signature: toHex(signature) };
}

const fromHex = (hex: string) => new Uint8Array(hex.match(/../g)?.map((b) => Number.parseInt(b, 16)) ?? []);

/**
 * The coordinator keys of a fleet list that parses and is signed by the pinned fleet key; null for anything else
 * (another fleet's key, a forged or altered list, a malformed answer).
 */
export async function verifiedFleetKeys(pinnedFleetKey: string, answer: unknown): Promise<string[] | null> {
  const parsed = v.safeParse(SignedFleetList, answer);
  if (!parsed.success || parsed.output.fleetKey !== pinnedFleetKey) return null;
  const list = parsed.output;
  const ok = await verifySignature(fromHex(list.fleetKey), fromHex(list.signature), fleetListBytes(list.fleetKey, list.coordinators, list.issuedAtMs));
  return ok ? list.coordinators.map((c) => c.key) : null;
}
