// Splits messages into frames below the data channel's size limit and reassembles them, bounds checked first.
import { fail, type Parsed } from './errors.ts';

/** Chromium refuses data channel messages over 256 KiB; 64 KiB frames measured as fast as any here. */
export const FRAME_PAYLOAD_BYTES = 64 * 1024;
/** The largest whole message either side accepts (a lease of a 256-row tile at K = 16384 is 32 MiB). */
export const MAX_MESSAGE_BYTES = 96 * 1024 * 1024;
/** A message whose next frame does not arrive within this time is dropped: slow trickling is abuse. */
export const FRAME_GAP_TIMEOUT_MS = 15_000;

const MAGIC = 0x4547; // 'EG'
const FRAME_FORMAT = 1;
export const FRAME_HEADER_BYTES = 20;

/**
 * Frame layout, little-endian:
 *   u16 magic 'EG' | u8 format | u8 reserved | u32 messageId | u32 chunkIndex | u32 chunkCount | u32 totalBytes | payload
 */
export function* frames(messageId: number, message: Uint8Array, payloadBytes = FRAME_PAYLOAD_BYTES): Generator<Uint8Array> {
  const chunkCount = Math.max(1, Math.ceil(message.byteLength / payloadBytes));
  for (let index = 0; index < chunkCount; index++) {
    const payload = message.subarray(index * payloadBytes, Math.min(message.byteLength, (index + 1) * payloadBytes));
    const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
    const view = new DataView(frame.buffer);
    view.setUint16(0, MAGIC, true);
    view.setUint8(2, FRAME_FORMAT);
    view.setUint32(4, messageId >>> 0, true);
    view.setUint32(8, index, true);
    view.setUint32(12, chunkCount, true);
    view.setUint32(16, message.byteLength, true);
    frame.set(payload, FRAME_HEADER_BYTES);
    yield frame;
  }
}

interface Partial {
  messageId: number;
  chunkCount: number;
  nextIndex: number;
  filled: number;
  bytes: Uint8Array;
  lastFrameAtMs: number;
}

/**
 * Reassembles frames from one ordered, reliable channel. The sender finishes one message before starting
 * the next, so at most one message is in flight; anything else is a protocol error.
 */
export class Reassembler {
  private partial: Partial | undefined;

  constructor(
    /** The largest message accepted; a message's buffer is made whole on its first frame, so this bounds memory. */
    public maxMessageBytes = MAX_MESSAGE_BYTES,
    private readonly payloadBytes = FRAME_PAYLOAD_BYTES,
  ) {}

  /** Returns the whole message when this frame completes one, null while one is still arriving. */
  push(frame: Uint8Array, nowMs: number): Parsed<Uint8Array | null> {
    if (frame.byteLength < FRAME_HEADER_BYTES) return fail('malformed-frame', `frame of ${frame.byteLength} bytes is shorter than its header`);
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (view.getUint16(0, true) !== MAGIC || view.getUint8(2) !== FRAME_FORMAT) {
      return fail('malformed-frame', 'frame does not start with the Ergon frame magic and format');
    }
    const messageId = view.getUint32(4, true);
    const chunkIndex = view.getUint32(8, true);
    const chunkCount = view.getUint32(12, true);
    const totalBytes = view.getUint32(16, true);
    const payload = frame.subarray(FRAME_HEADER_BYTES);

    if (totalBytes > this.maxMessageBytes) {
      this.partial = undefined;
      return fail('message-too-large', `message declares ${totalBytes} bytes; the limit is ${this.maxMessageBytes}`);
    }
    if (chunkCount !== Math.max(1, Math.ceil(totalBytes / this.payloadBytes)) || payload.byteLength > this.payloadBytes) {
      this.partial = undefined;
      return fail('malformed-frame', `frame declares ${chunkCount} chunks for ${totalBytes} bytes`);
    }

    if (chunkIndex === 0) {
      if (this.partial) {
        this.partial = undefined;
        return fail('malformed-frame', 'a new message started before the previous one finished');
      }
      this.partial = { messageId, chunkCount, nextIndex: 0, filled: 0, bytes: new Uint8Array(totalBytes), lastFrameAtMs: nowMs };
    }
    const partial = this.partial;
    if (!partial || partial.messageId !== messageId || partial.nextIndex !== chunkIndex || partial.chunkCount !== chunkCount
      || partial.bytes.byteLength !== totalBytes) {
      this.partial = undefined;
      return fail('malformed-frame', `unexpected frame ${chunkIndex}/${chunkCount} of message ${messageId}`);
    }
    const expected = Math.min(this.payloadBytes, totalBytes - partial.filled);
    if (payload.byteLength !== expected) {
      this.partial = undefined;
      return fail('malformed-frame', `frame ${chunkIndex} carries ${payload.byteLength} bytes, expected ${expected}`);
    }
    partial.bytes.set(payload, partial.filled);
    partial.filled += payload.byteLength;
    partial.nextIndex++;
    partial.lastFrameAtMs = nowMs;
    if (partial.nextIndex < partial.chunkCount) return { ok: true, value: null };
    this.partial = undefined;
    return { ok: true, value: partial.bytes };
  }

  /** Drops a message whose frames stopped arriving; true when one was dropped. */
  expireStalled(nowMs: number, gapTimeoutMs = FRAME_GAP_TIMEOUT_MS): boolean {
    if (this.partial && nowMs - this.partial.lastFrameAtMs > gapTimeoutMs) {
      this.partial = undefined;
      return true;
    }
    return false;
  }
}
