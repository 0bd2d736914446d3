// Whose receipts count: a receipt is counted only when it verifies under a coordinator key this wallet trusts, a key
// pinned from a coordinator the person added (its own GET /api/config). A receipt that verifies under any other key
// is kept and shown apart, never counted: anyone can make a key and sign any credits with it.
import * as v from 'valibot';
import { pointProblem } from '../protocol/ed25519.ts';
import { Receipt } from '../protocol/messages.ts';
import { toHex, verifyReceipt } from '../protocol/receipt.ts';
import { SignedFleetList, verifiedFleetKeys } from '../protocol/fleet-list.ts';

/** A coordinator key the wallet trusts, and the coordinator the person added that it came from. */
export interface TrustedCoordinator {
  /** The Ed25519 public key, hex */
  key: string;
  url: string;
  pinnedAtMs: number;
}

/** counted: verified under a trusted key; unverified: verified, but under a key no coordinator of the person's vouches for. */
export type ReceiptStatus = 'counted' | 'unverified' | 'refused';

/** One stored receipt and its verdict. */
export interface CheckedReceipt {
  unitId: string;
  receipt: Receipt | undefined;
  status: ReceiptStatus;
  /** For a counted receipt, the coordinator that vouches for its key. */
  coordinatorUrl?: string;
  /** Why a receipt is refused or not counted, as a sentence. */
  reason?: string;
}

export interface Balance {
  microCredits: bigint;
  ops: bigint;
  /** Receipts counted in the balance. */
  receipts: number;
  /** Receipts that verify under keys the wallet does not trust: shown apart, never counted. */
  unverified: number;
  unverifiedMicroCredits: bigint;
  /** Stored records that failed validation or signature checks: shown, never counted. */
  invalid: number;
}

export const UNTRUSTED_REASON = 'signed by a coordinator you have not added';

/**
 * The verdict on one stored or arriving record: refused unless it is a well-formed receipt for this wallet whose
 * signature verifies (strictly) under the key it names; then counted only if that key is trusted.
 */
export async function checkReceipt(
  record: unknown,
  walletKey: string,
  trusted: ReadonlyMap<string, TrustedCoordinator>,
  label = 'a receipt',
): Promise<CheckedReceipt> {
  const parsed = v.safeParse(Receipt, record);
  if (!parsed.success) return { unitId: label, receipt: undefined, status: 'refused', reason: parsed.issues[0].message };
  const receipt = parsed.output;
  const refused = (reason: string): CheckedReceipt => ({ unitId: receipt.unitId, receipt, status: 'refused', reason });
  if (toHex(receipt.minerKey) !== walletKey) return refused('it names another wallet');
  const keyProblem = pointProblem(receipt.coordinatorKey);
  if (keyProblem) return refused(`its coordinator key is refused: ${keyProblem}`);
  if (!(await verifyReceipt(receipt))) return refused('its signature does not verify');
  const coordinator = trusted.get(toHex(receipt.coordinatorKey));
  if (!coordinator) return { unitId: receipt.unitId, receipt, status: 'unverified', reason: UNTRUSTED_REASON };
  return { unitId: receipt.unitId, receipt, status: 'counted', coordinatorUrl: coordinator.url };
}

/** The balance is derived from the verdicts: counted receipts only; the others are tallied apart. */
export function balanceOf(checked: readonly CheckedReceipt[]): Balance {
  const balance: Balance = { microCredits: 0n, ops: 0n, receipts: 0, unverified: 0, unverifiedMicroCredits: 0n, invalid: 0 };
  for (const c of checked) {
    if (c.status === 'refused' || !c.receipt) {
      balance.invalid++;
    } else if (c.status === 'unverified') {
      balance.unverified++;
      balance.unverifiedMicroCredits += c.receipt.microCredits;
    } else {
      balance.receipts++;
      balance.microCredits += c.receipt.microCredits;
      balance.ops += c.receipt.ops;
    }
  }
  return balance;
}

/** How long a coordinator may take to tell its key before the attempt is given up (and tried again later). */
const KEY_FETCH_TIMEOUT_MS = 10_000;

const CoordinatorConfig = v.object({
  coordinatorKey: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a 32-byte key in hex')),
});

/** Asks a coordinator for its receipt-signing key (hex) at its own origin; throws a sentence saying why not. */
export async function fetchCoordinatorKey(url: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(new URL('api/config', url), { signal: AbortSignal.timeout(KEY_FETCH_TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`could not reach ${url} for its key: ${(err as Error).message}`);
  }
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status} when asked for its key`);
  let json: unknown;
  try {
    json = await response.json();
  } catch (err) {
    throw new Error(`${url} did not answer with JSON when asked for its key: ${(err as Error).message}`);
  }
  const parsed = v.safeParse(CoordinatorConfig, json);
  if (!parsed.success) throw new Error(`${url} did not give a coordinator key: ${parsed.issues[0].message}`);
  return parsed.output.coordinatorKey; // checked strictly where it is pinned (Wallet#trustCoordinator)
}

/**
 * The coordinators a fleet vouches for: every coordinator on a GET /api/fleet answer signed by the fleet key the
 * wallet pinned, as trusted coordinators to add beside the pinned ones; none for a list that is forged, altered,
 * malformed or signed by another fleet. Their receipts then count like those of a coordinator the person added.
 */
export async function fleetTrust(pinnedFleetKey: string, answer: unknown, nowMs: number): Promise<TrustedCoordinator[]> {
  if (!(await verifiedFleetKeys(pinnedFleetKey, answer))) return [];
  const list = v.parse(SignedFleetList, answer);
  return list.coordinators.filter((c) => !pointProblem(fromHexKey(c.key))).map((c) => ({ key: c.key, url: c.url, pinnedAtMs: nowMs }));
}

const fromHexKey = (hex: string) => new Uint8Array(hex.match(/../g)?.map((b) => Number.parseInt(b, 16)) ?? []);

/**
 * The coordinators of the fleet that the coordinator at `url` belongs to, from its GET /api/fleet: trusted because
 * that coordinator, whose key the wallet pinned from its own origin, serves the list and is on it, and the list is
 * signed by the fleet key it names. None when the coordinator is not in a fleet (404). Throws a sentence when the
 * list cannot be read or does not hold up.
 */
export async function fetchFleet(url: string, coordinatorKey: string, nowMs: number): Promise<TrustedCoordinator[]> {
  let response: Response;
  try {
    response = await fetch(new URL('api/fleet', url), { signal: AbortSignal.timeout(KEY_FETCH_TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`could not reach ${url} for its fleet: ${(err as Error).message}`);
  }
  if (response.status === 404) return [];
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status} when asked for its fleet`);
  const answer: unknown = await response.json().catch(() => undefined);
  const parsed = v.safeParse(SignedFleetList, answer);
  if (!parsed.success) throw new Error(`${url} did not give a fleet list: ${parsed.issues[0].message}`);
  if (!parsed.output.coordinators.some((c) => c.key === coordinatorKey)) {
    throw new Error(`${url}'s fleet list does not name ${url}'s own key, so it vouches for nothing`);
  }
  const members = await fleetTrust(parsed.output.fleetKey, answer, nowMs);
  if (members.length === 0) throw new Error(`${url}'s fleet list is not signed by the fleet key it names`);
  return members;
}
