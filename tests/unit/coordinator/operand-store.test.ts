// The operand store on a real folder: identical concurrent puts, puts of stored bytes, streamed writes and aborts.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OperandStore, sha256Hex } from '../../../src/coordinator/operand-store.ts';

describe('operand store', () => {
  let dataDir: string;
  let store: OperandStore;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ergon-operands-'));
    store = await OperandStore.open(dataDir);
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const files = () => readdir(join(dataDir, 'operands'));

  it('stores identical bytes put at once: every put succeeds, one file, no temporary left', async () => {
    const bytes = new Uint8Array(4096).map((_, i) => i * 7);
    const hashes = await Promise.all(Array.from({ length: 20 }, () => store.put(bytes)));
    expect(new Set(hashes)).toEqual(new Set([sha256Hex(bytes)]));
    expect(await files()).toEqual([sha256Hex(bytes)]);
    expect(await store.get(hashes[0])).toEqual(bytes);
  });

  it('leaves stored bytes alone when they are put again', async () => {
    const bytes = new Uint8Array(1000).fill(3);
    const hash = await store.put(bytes);
    const before = await stat(join(dataDir, 'operands', hash));
    expect(await store.put(bytes)).toBe(hash);
    const after = await stat(join(dataDir, 'operands', hash));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('streams bytes in, named by their hash once committed, and an aborted write leaves nothing', async () => {
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
    const writer = await store.begin();
    for (let at = 0; at < bytes.length; at += 65_536) await writer.write(bytes.subarray(at, at + 65_536));
    expect(writer.bytesWritten).toBe(bytes.length);
    expect(await writer.contents()).toEqual(bytes);
    const hash = await writer.commit();
    expect(hash).toBe(sha256Hex(bytes));
    expect(await store.get(hash)).toEqual(bytes);
    // The same bytes streamed again: no-op success, one file.
    const again = await store.begin();
    await again.write(bytes);
    expect(await again.commit()).toBe(hash);

    const dropped = await store.begin();
    await dropped.write(bytes.subarray(0, 1000));
    await dropped.abort();
    expect(await files()).toEqual([hash]);
  });
});
