// Job operands on disk, content-addressed by sha256: written before a job is accepted, read back after a restart.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
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

  /**
   * Stores bytes under their sha256 and returns it; durable (fsynced, then renamed into place) when it returns.
   * Bytes already stored are not written again, and identical puts at once all succeed.
   */
  async put(bytes: Uint8Array): Promise<string> {
    const hash = sha256Hex(bytes);
    if (await this.holds(hash, bytes.byteLength)) return hash;
    const writer = await this.begin();
    try {
      await writer.write(bytes);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer.commit();
  }

  /** A temporary file to stream an operand into; `commit` names it by its hash, `abort` removes it. */
  async begin(): Promise<OperandWriter> {
    // A random name: two writes of the same bytes at once must not share (and truncate) one temporary file.
    const temporary = join(this.dir, `${randomBytes(12).toString('hex')}.partial`);
    const file = await open(temporary, 'wx+', 0o600);
    return new OperandWriter(file, temporary, (hash, byteLength) => this.place(temporary, hash, byteLength));
  }

  /** The bytes stored under this hash; throws when they are missing or no longer match it. */
  async get(hash: string): Promise<Uint8Array<ArrayBuffer>> {
    if (!SHA256_HEX.test(hash)) throw new Error(`operand store: ${JSON.stringify(hash)} is not a sha256`);
    const file = await readFile(join(this.dir, hash));
    // A file read whole has an ArrayBuffer of its own: viewed, not copied, as operands can be hundreds of MiB.
    const own = file.buffer instanceof ArrayBuffer && file.byteOffset === 0 && file.byteLength === file.buffer.byteLength;
    const bytes = own ? new Uint8Array(file.buffer) : new Uint8Array(file);
    const actual = sha256Hex(bytes);
    if (actual !== hash) throw new Error(`operand store: ${hash} is corrupt (its bytes hash to ${actual})`);
    return bytes;
  }

  async delete(hash: string): Promise<void> {
    if (!SHA256_HEX.test(hash)) return;
    await rm(join(this.dir, hash), { force: true });
  }

  /**
   * Removes files that no job refers to (left by a crash between writing operands and recording the job, or in the
   * middle of an upload). Only at a start: it would take the temporary files of uploads in progress.
   */
  async deleteAllBut(keep: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (keep.has(name)) continue;
      await rm(join(this.dir, name), { force: true });
      removed++;
    }
    return removed;
  }

  /** True when a file of this hash and length is stored: its name is its content's hash, so it holds these bytes. */
  private async holds(hash: string, byteLength: number): Promise<boolean> {
    try {
      return (await stat(join(this.dir, hash))).size === byteLength;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Puts a finished temporary file in place under its hash, or drops it when those bytes are stored already. */
  private async place(temporary: string, hash: string, byteLength: number): Promise<void> {
    if (await this.holds(hash, byteLength)) {
      await rm(temporary, { force: true });
      return;
    }
    // Atomic: a concurrent identical write may have renamed its own copy in place meanwhile; either copy is right.
    await rename(temporary, join(this.dir, hash));
  }
}

/** One operand being written: bytes go to its temporary file as they come and are hashed on the way. */
export class OperandWriter {
  private readonly hash: Hash = createHash('sha256');
  private ended = false;
  bytesWritten = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly temporary: string,
    private readonly place: (hash: string, byteLength: number) => Promise<void>,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (this.ended) throw new Error('operand store: write after commit or abort');
    this.hash.update(bytes);
    let at = 0;
    while (at < bytes.byteLength) at += (await this.file.write(bytes, at)).bytesWritten;
    this.bytesWritten += bytes.byteLength;
  }

  /**
   * What was written, read back from the temporary file before `commit`: the caller's own copy, which a job with
   * the same operands finishing (and deleting the stored file) meanwhile cannot take away.
   */
  async contents(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.ended) throw new Error('operand store: contents after commit or abort');
    const bytes = new Uint8Array(this.bytesWritten);
    for (let at = 0; at < bytes.byteLength; ) {
      const { bytesRead } = await this.file.read(bytes, at, bytes.byteLength - at, at);
      if (bytesRead === 0) throw new Error(`operand store: ${this.temporary} ends at ${at} of ${bytes.byteLength} bytes`);
      at += bytesRead;
    }
    return bytes;
  }

  /** Makes the bytes durable (fsynced, then renamed into place) and returns their sha256. */
  async commit(): Promise<string> {
    if (this.ended) throw new Error('operand store: commit after commit or abort');
    this.ended = true;
    const hash = this.hash.digest('hex');
    try {
      try {
        await this.file.sync();
      } finally {
        await this.file.close();
      }
      await this.place(hash, this.bytesWritten);
    } catch (err) {
      await rm(this.temporary, { force: true });
      throw err;
    }
    return hash;
  }

  /** Drops what was written. Safe to call more than once, and after a failed commit. */
  async abort(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.file.close();
    }
    await rm(this.temporary, { force: true });
  }
}
