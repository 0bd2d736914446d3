// The operator key: made once, owner-only, reused; refused when others can read it or it is malformed.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateOperatorKey, OPERATOR_KEY_FILE, OperatorKey } from '../../../src/coordinator/operator-key.ts';

describe('operator key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-opkey-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is made on first start in an owner-only file, then read back the same', async () => {
    const first = await loadOrCreateOperatorKey(dir, undefined);
    expect(first.created).toBe(true);
    expect(first.key).toMatch(/^ergon_op_[0-9a-f]{48}$/);
    expect((await stat(join(dir, OPERATOR_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, OPERATOR_KEY_FILE), 'utf8')).toBe(`${first.key}\n`);
    expect(await loadOrCreateOperatorKey(dir, undefined)).toEqual({ key: first.key, created: false });
  });

  it('takes ERGON_OPERATOR_KEY over the file, and refuses a malformed one', async () => {
    expect(await loadOrCreateOperatorKey(dir, 'ergon_op_from_the_environment')).toEqual({ key: 'ergon_op_from_the_environment', created: false });
    await expect(loadOrCreateOperatorKey(dir, 'short')).rejects.toThrow('16-128 characters');
  });

  it('refuses a key file others can read', async () => {
    const path = join(dir, OPERATOR_KEY_FILE);
    await writeFile(path, 'ergon_op_0123456789abcdef\n');
    await chmod(path, 0o644);
    await expect(loadOrCreateOperatorKey(dir, undefined)).rejects.toThrow(`chmod 600 ${path}`);
  });

  it('matches only the exact key', () => {
    const key = new OperatorKey('ergon_op_0123456789abcdef');
    expect(key.matches('ergon_op_0123456789abcdef')).toBe(true);
    expect(key.matches('ergon_op_0123456789abcdeF')).toBe(false);
    expect(key.matches('')).toBe(false);
  });
});
