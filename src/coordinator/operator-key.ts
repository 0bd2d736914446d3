// The operator's key, which opens the operator page, its JSON state and /metrics: from ERGON_OPERATOR_KEY, or a file
// in the data folder made owner-only on first start (as the requesters' API keys are). Never a requester's key.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const OPERATOR_KEY_FILE = 'operator-key';
const KEY_PATTERN = /^[A-Za-z0-9_.-]{16,128}$/;

export function newOperatorKey(): string {
  return `ergon_op_${randomBytes(24).toString('hex')}`;
}

export function checkOperatorKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new Error('the operator key must be 16-128 characters of [A-Za-z0-9_.-]');
  return key;
}

/** Compares a presented key with the operator's in constant time (both hashed first, so lengths cannot leak). */
export class OperatorKey {
  private readonly hash: Buffer;

  constructor(key: string) {
    this.hash = sha256(checkOperatorKey(key));
  }

  matches(presented: string): boolean {
    return timingSafeEqual(sha256(presented), this.hash);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * The key to accept: `fromEnv` when given, else the data folder's key file, made with a fresh key on first start.
 * `created` is true when that file was just made, so the caller can say so.
 */
export async function loadOrCreateOperatorKey(dataDir: string, fromEnv: string | undefined): Promise<{ key: string; created: boolean }> {
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { key: checkOperatorKey(fromEnv.trim()), created: false };
  const path = join(dataDir, OPERATOR_KEY_FILE);
  try {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) throw new Error(`${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    const lines = (await readFile(path, 'utf8')).split('\n').map((k) => k.trim()).filter((k) => k !== '' && !k.startsWith('#'));
    if (lines.length !== 1) throw new Error(`${path} must hold exactly one operator key (it holds ${lines.length})`);
    return { key: checkOperatorKey(lines[0]), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = newOperatorKey();
  // The bare key and nothing else, so that Prometheus can read it as its `credentials_file` for /metrics.
  await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return { key, created: true };
}
