// Requesters' API keys: from ERGON_API_KEYS, or a file in the data folder made owner-only on first start.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const API_KEYS_FILE = 'api-keys';
const KEY_PATTERN = /^[A-Za-z0-9_.-]{16,128}$/;

/** Keys held as their sha256: a lookup by hash leaks nothing through timing, and no key sits in memory as typed. */
export class ApiKeys {
  private readonly idOfHash = new Map<string, string>();

  constructor(keys: readonly string[]) {
    for (const key of keys) {
      if (!KEY_PATTERN.test(key)) throw new Error('an API key must be 16-128 characters of [A-Za-z0-9_.-]');
      this.idOfHash.set(hashKey(key), keyId(key));
    }
    if (this.idOfHash.size === 0) throw new Error('at least one API key is needed');
  }

  /** The key's id (safe to log and store), or undefined when the key is not one of ours. */
  identify(key: string): string | undefined {
    return this.idOfHash.get(hashKey(key));
  }
}

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');
/** A short public name for a key: its hash's first 12 hex digits. */
export const keyId = (key: string): string => `key-${hashKey(key).slice(0, 12)}`;

export function newApiKey(): string {
  return `ergon_${randomBytes(24).toString('hex')}`;
}

/**
 * The keys to accept: `fromEnv` (comma-separated) when given, else the data folder's key file, made with one
 * fresh key on first start. `created` is true when that file was just made, so the caller can print the key.
 */
export async function loadOrCreateApiKeys(dataDir: string, fromEnv: string | undefined): Promise<{ keys: string[]; created: boolean }> {
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { keys: fromEnv.split(',').map((k) => k.trim()).filter((k) => k !== ''), created: false };
  }
  const path = join(dataDir, API_KEYS_FILE);
  try {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) throw new Error(`${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    const keys = (await readFile(path, 'utf8')).split('\n').map((k) => k.trim()).filter((k) => k !== '' && !k.startsWith('#'));
    return { keys, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = newApiKey();
  await writeFile(path, `# Ergon requester API keys, one a line; send one as "Authorization: Bearer KEY".\n${key}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return { keys: [key], created: true };
}
