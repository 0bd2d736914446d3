// Operands kept across visits: Cache Storage, under a byte budget the person sets and can clear in the page. Only
// bytes already checked against their sha256 are stored, so a read needs no check again.
const CACHE_NAME = 'ergon-operands-v1';
/** Each entry's size, so that the total is known without reading the bodies. */
const BYTES_HEADER = 'x-ergon-bytes';

const MiB = 1024 * 1024;
/** The budget a person starts with; 0 turns keeping operands off. */
export const DEFAULT_OPERAND_CACHE_MIB = 512;

function keyOf(sha256: string): string {
  // A synthetic address on this origin: Cache Storage keys are requests. Never fetched.
  return new URL(`/__ergon-operands/${sha256}`, self.location.href).href;
}

function available(): boolean {
  return typeof caches !== 'undefined';
}

/** The bytes kept under this hash, or undefined. */
export async function cachedOperand(sha256: string): Promise<ArrayBuffer | undefined> {
  if (!available()) return undefined;
  const cache = await caches.open(CACHE_NAME);
  const response = await cache.match(keyOf(sha256));
  return response ? response.arrayBuffer() : undefined;
}

/** Keeps checked bytes under their hash, dropping the oldest entries to stay within the budget. */
export async function keepOperand(sha256: string, bytes: ArrayBuffer, budgetBytes: number): Promise<void> {
  if (!available() || bytes.byteLength > budgetBytes) return;
  const cache = await caches.open(CACHE_NAME);
  const entries = await sizes(cache);
  let total = entries.reduce((sum, e) => sum + e.bytes, 0) + bytes.byteLength;
  // keys() lists in insertion order: the oldest first.
  for (const entry of entries) {
    if (total <= budgetBytes) break;
    await cache.delete(entry.request);
    total -= entry.bytes;
  }
  await cache.put(keyOf(sha256), new Response(bytes, { headers: { [BYTES_HEADER]: String(bytes.byteLength), 'content-type': 'application/octet-stream' } }));
}

/** What the cache holds now: what the page shows beside the budget. */
export async function operandCacheUsage(): Promise<{ bytes: number; operands: number }> {
  if (!available()) return { bytes: 0, operands: 0 };
  const entries = await sizes(await caches.open(CACHE_NAME));
  return { bytes: entries.reduce((sum, e) => sum + e.bytes, 0), operands: entries.length };
}

/** Empties the cache (the page's Clear button). */
export async function clearOperandCache(): Promise<void> {
  if (available()) await caches.delete(CACHE_NAME);
}

async function sizes(cache: Cache): Promise<{ request: Request; bytes: number }[]> {
  const out = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    out.push({ request, bytes: Number(response?.headers.get(BYTES_HEADER) ?? 0) });
  }
  return out;
}

export function mibToBytes(mib: number): number {
  return Math.max(0, Math.round(mib)) * MiB;
}
