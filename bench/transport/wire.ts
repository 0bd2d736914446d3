// The bench's own messages over a FramedChannel, shared by the page and the bench server: the first byte says what.

/** Page -> server: send me `totalBytes` in messages of `messageBytes`. */
export const ASK_DOWN = 1;
/** Server -> page: a message of a download; the last one is LAST_DOWN. */
export const DOWN = 2;
export const LAST_DOWN = 3;
/** Page -> server: a message of an upload; the last one is LAST_UP, answered with UP_DONE. */
export const UP = 4;
export const LAST_UP = 5;
export const UP_DONE = 6;
/** Server -> page, first: the channel is open at both ends. */
export const READY = 7;

export function askDown(totalBytes: number, messageBytes: number): Uint8Array {
  const bytes = new Uint8Array(9);
  const view = new DataView(bytes.buffer);
  bytes[0] = ASK_DOWN;
  view.setUint32(1, totalBytes, true);
  view.setUint32(5, messageBytes, true);
  return bytes;
}

export function readAskDown(bytes: Uint8Array): { totalBytes: number; messageBytes: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { totalBytes: view.getUint32(1, true), messageBytes: view.getUint32(5, true) };
}

/** The messages of a transfer: each `messageBytes` (the last maybe less), first byte `tag`, the last `lastTag`. */
export function* transfer(totalBytes: number, messageBytes: number, tag: number, lastTag: number): Generator<Uint8Array> {
  const body = new Uint8Array(messageBytes);
  for (let i = 0; i < body.length; i++) body[i] = (i * 131) & 0xff;
  for (let sent = 0; sent < totalBytes; sent += messageBytes) {
    const size = Math.min(messageBytes, totalBytes - sent);
    const message = body.slice(0, size);
    message[0] = sent + size >= totalBytes ? lastTag : tag;
    yield message;
  }
}
