// Job operands on disk, content-addressed by sha256: written before a job is accepted, read back after a restart.
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class OperandStore {
  private constructor(private readonly dir: string) {}

  static async open(dataDir: string): Promise<OperandStore> {
    const dir = join(dataDir, 'operands');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new OperandStore(dir);
  }

  /** Stores bytes under their sha256 and returns it; durable (fsynced, then renamed into place) when it returns. */
  async put(bytes: Uint8Array): Promise<string> {
    const hash = sha256Hex(bytes);
    const path = join(this.dir, hash);
    const temporary = `${path}.${process.pid}.${Date.now()}.partial`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
    return hash;
  }

  /** The bytes stored under this hash; throws when they are missing or no longer match it. */
  async get(hash: string): Promise<Uint8Array<ArrayBuffer>> {
    if (!SHA256_HEX.test(hash)) throw new Error(`operand store: ${JSON.stringify(hash)} is not a sha256`);
    const bytes = new Uint8Array(await readFile(join(this.dir, hash)));
    const actual = sha256Hex(bytes);
    if (actual !== hash) throw new Error(`operand store: ${hash} is corrupt (its bytes hash to ${actual})`);
    return bytes;
  }

  async delete(hash: string): Promise<void> {
    if (!SHA256_HEX.test(hash)) return;
    await rm(join(this.dir, hash), { force: true });
  }

  /** Removes files that no job refers to (left by a crash between writing operands and recording the job). */
  async deleteAllBut(keep: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (keep.has(name)) continue;
      await rm(join(this.dir, name), { force: true });
      removed++;
    }
    return removed;
  }
}
