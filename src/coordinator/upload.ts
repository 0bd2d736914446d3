// Receives a job's body, whatever its kind: streamed to a temporary file in the operand store as it arrives, bounded
// in bytes (each upload and all in progress together) and in time (a stalled one is closed).
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.ts';
import type { OperandStore, OperandWriter } from './operand-store.ts';

const MiB = 1024 * 1024;

/** What one upload holds in memory: the bytes received since its last write to disk. */
export const UPLOAD_BUFFER_BYTES = MiB;
/** A client told the coordinator is busy with uploads asks again after this long. */
const UPLOADS_BUSY_RETRY_S = 5;

export interface UploadLimits {
  /** Declared body bytes of all uploads in progress together: disk now, memory once each is accepted. */
  bytesInFlight: number;
  /** An upload that sends no byte for this long is answered 408 and closed. */
  idleTimeoutMs: number;
}

/**
 * Two of the largest bodies (512 MiB) at once. No honest client pauses 20 s in the middle of a body; a stalled one
 * would otherwise keep its reservation until the server's whole-request timeout.
 */
export const UPLOAD_LIMITS: UploadLimits = { bytesInFlight: 1024 * MiB, idleTimeoutMs: 20_000 };

export interface UploadStats {
  /** uploads in progress */
  uploads: number;
  /** their declared body bytes, counted against `bytesInFlight` */
  reservedBytes: number;
  /** body bytes received so far */
  receivedBytes: number;
  /** received bytes in memory, not yet written to disk: at most UPLOAD_BUFFER_BYTES an upload */
  bufferedBytes: number;
}

interface Upload {
  reservedBytes: number;
  receivedBytes: number;
  bufferedBytes: number;
}

export class Uploads {
  private readonly live = new Set<Upload>();
  private readonly limits: UploadLimits;

  constructor(private readonly store: OperandStore, limits: Partial<UploadLimits> = {}) {
    this.limits = { ...UPLOAD_LIMITS, ...limits };
  }

  stats(): UploadStats {
    const stats: UploadStats = { uploads: this.live.size, reservedBytes: 0, receivedBytes: 0, bufferedBytes: 0 };
    for (const upload of this.live) {
      stats.reservedBytes += upload.reservedBytes;
      stats.receivedBytes += upload.receivedBytes;
      stats.bufferedBytes += upload.bufferedBytes;
    }
    return stats;
  }

  /**
   * Reads a body of exactly `bodyBytes` and returns it. The declared length is checked before anything is
   * allocated, and the body streams to a temporary file through one buffer, so a stalled or huge upload holds one
   * buffer, not its size, in memory; only a complete body is read back, for its kind to parse and store.
   */
  async receive(req: IncomingMessage, bodyBytes: number): Promise<Uint8Array<ArrayBuffer>> {
    const declared = req.headers['content-length'];
    if (declared === undefined) throw new HttpError(411, 'length-required', 'send the body with a Content-Length header');
    if (Number(declared) !== bodyBytes) {
      throw new HttpError(400, 'bad-body-length', `body is ${declared} bytes; ${bodyBytes} expected for these parameters`);
    }
    const reserved = this.stats().reservedBytes;
    if (reserved + bodyBytes > this.limits.bytesInFlight) {
      throw new HttpError(
        503,
        'uploads-busy',
        `the coordinator is receiving ${reserved} bytes of other uploads and takes at most ${this.limits.bytesInFlight} at once; retry in ${UPLOADS_BUSY_RETRY_S} s`,
        { 'retry-after': String(UPLOADS_BUSY_RETRY_S) },
      );
    }
    const upload: Upload = { reservedBytes: bodyBytes, receivedBytes: 0, bufferedBytes: 0 };
    this.live.add(upload);
    let writer: OperandWriter | undefined;
    try {
      writer = await this.store.begin();
      await this.stream(req, upload, writer);
      return await writer.contents();
    } finally {
      this.live.delete(upload);
      await writer?.abort();
    }
  }

  /** Copies the body through one buffer into the writer. */
  private async stream(req: IncomingMessage, upload: Upload, writer: OperandWriter): Promise<void> {
    const buffer = new Uint8Array(Math.min(upload.reservedBytes, UPLOAD_BUFFER_BYTES));
    const flush = async () => {
      await writer.write(buffer.subarray(0, upload.bufferedBytes));
      upload.bufferedBytes = 0;
    };
    for await (const chunk of chunksOf(req, this.limits.idleTimeoutMs)) {
      const receivedBytes = upload.receivedBytes + chunk.byteLength;
      if (receivedBytes > upload.reservedBytes) {
        throw new HttpError(413, 'body-too-large', `body exceeds the ${upload.reservedBytes} bytes its parameters imply`);
      }
      for (let at = 0; at < chunk.byteLength; ) {
        const taken = Math.min(chunk.byteLength - at, buffer.byteLength - upload.bufferedBytes);
        buffer.set(chunk.subarray(at, at + taken), upload.bufferedBytes);
        upload.bufferedBytes += taken;
        at += taken;
        if (upload.bufferedBytes === buffer.byteLength) await flush();
      }
      // Counted once in the buffer or on disk: received = written + buffered whenever no chunk is being handled.
      upload.receivedBytes = receivedBytes;
    }
    if (upload.receivedBytes !== upload.reservedBytes) {
      throw new HttpError(400, 'bad-body-length', `body is ${upload.receivedBytes} bytes; ${upload.reservedBytes} expected for these parameters`);
    }
    if (upload.bufferedBytes > 0) await flush();
  }
}

/**
 * The body's chunks, as they come; a 408 when none comes for `idleMs`, and a 400 when the client hangs up. The
 * timer runs only while waiting for the client, not while a chunk is being written to disk.
 */
async function* chunksOf(req: IncomingMessage, idleMs: number): AsyncGenerator<Buffer> {
  const chunks = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new HttpError(408, 'upload-stalled', `no bytes for ${idleMs} ms; the upload is closed, send it again`)), idleMs);
    });
    let next: IteratorResult<Buffer>;
    try {
      next = await Promise.race([chunks.next(), stalled]);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      // The client closed the connection mid-body: nobody will read the answer, but the error says what happened.
      if (req.destroyed) throw new HttpError(400, 'upload-aborted', 'the client closed the connection before the body was complete');
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (next.done) return;
    yield next.value;
  }
}
