// A framed message channel over any raw byte pipe (a PeerJS data connection), with flow control.
import { frames, Reassembler } from './framing.ts';
import type { ProtocolError } from './errors.ts';

/** The raw pipe underneath: PeerJS's DataConnection in the browser and in Node both fit. */
export interface BytePipe {
  send(frame: Uint8Array): void;
  /** Bytes queued but not yet handed to the network. */
  bufferedBytes(): number;
}

/** Sending pauses while more than this is queued, so a large lease never piles up unbounded in memory. */
export const HIGH_WATER_BYTES = 1024 * 1024;
const DRAIN_POLL_MS = 5;

export class FramedChannel {
  private nextMessageId = 1;
  private sending: Promise<void> = Promise.resolve();
  private readonly reassembler = new Reassembler();
  private closed = false;

  constructor(
    private readonly pipe: BytePipe,
    private readonly onMessage: (bytes: Uint8Array) => void,
    private readonly onFrameError: (error: ProtocolError) => void,
    /** Sending pauses while more than this is queued (bench:transport compares values). */
    private readonly highWaterBytes = HIGH_WATER_BYTES,
  ) {}

  /** Queues a whole message; messages go out one after another, each in frames. */
  send(message: Uint8Array): Promise<void> {
    const messageId = this.nextMessageId++;
    this.sending = this.sending.then(async () => {
      for (const frame of frames(messageId, message)) {
        while (!this.closed && this.pipe.bufferedBytes() > this.highWaterBytes) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
        }
        if (this.closed) return;
        this.pipe.send(frame);
      }
    });
    return this.sending;
  }

  /** The largest message this side accepts from now on (e.g. small until a peer has proved who it is). */
  set maxMessageBytes(bytes: number) {
    this.reassembler.maxMessageBytes = bytes;
  }

  /** Feeds one frame from the pipe. */
  receive(data: ArrayBuffer | Uint8Array): void {
    const frame = data instanceof Uint8Array ? data : new Uint8Array(data);
    const parsed = this.reassembler.push(frame, Date.now());
    if (!parsed.ok) this.onFrameError(parsed.error);
    else if (parsed.value) this.onMessage(parsed.value);
  }

  /** Called periodically: drops a message whose frames stopped arriving. */
  checkStalled(): void {
    if (this.reassembler.expireStalled(Date.now())) {
      this.onFrameError({ code: 'malformed-frame', message: 'a message stopped arriving mid-way and was dropped' });
    }
  }

  close(): void {
    this.closed = true;
  }
}
