// A model's bytes on the miner: fetched once over HTTP from the coordinator's origin by its sha256, checked against
// it, and kept in Cache Storage, so that a second visit downloads no model bytes.
import { CodedError } from '../../protocol/errors.ts';
import { sha256Hex } from '../operand-feed.ts';

const CACHE_NAME = 'ergon-models-v1';

export const modelUrl = (sha256: string): string => new URL(`/api/models/${sha256}`, self.location.origin).href;

/** The model's bytes, from the cache when held there (checked again: storage can rot), else from the coordinator. */
export async function loadModel(sha256: string): Promise<{ bytes: ArrayBuffer; fromCache: boolean }> {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new CodedError('bad-params', `a lease names model ${JSON.stringify(sha256)}, not a sha256`);
  const url = modelUrl(sha256);
  const cache = 'caches' in self ? await caches.open(CACHE_NAME) : undefined;
  const cached = await cache?.match(url);
  if (cached) {
    const bytes = await cached.arrayBuffer();
    if ((await sha256Hex(bytes)) === sha256) return { bytes, fromCache: true };
    await cache?.delete(url);
  }
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new CodedError('engine-failed', `model ${sha256}: the coordinator answered ${response.status}`);
  const bytes = await response.arrayBuffer();
  const actual = await sha256Hex(bytes);
  if (actual !== sha256) throw new CodedError('engine-failed', `model ${sha256}: the bytes fetched hash to ${actual}`);
  await cache?.put(url, new Response(bytes.slice(0), { headers: { 'content-type': 'application/octet-stream' } }));
  return { bytes, fromCache: false };
}
