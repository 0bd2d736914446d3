// The bench server's end of a connection: answers the page's bench messages (wire.ts) over the product's FramedChannel.
import type { IncomingConnection } from '../../src/coordinator/miner-connections.ts';
import { FramedChannel } from '../../src/protocol/channel.ts';
import { ASK_DOWN, DOWN, LAST_DOWN, LAST_UP, READY, readAskDown, transfer, UP, UP_DONE } from './wire.ts';

/** The high-water mark the server's channels use: set by the bench before each series. */
export const benchSettings = { highWaterBytes: 0 };

export function acceptBench(connection: IncomingConnection): void {
  const channel: FramedChannel = new FramedChannel(
    connection.pipe,
    (message) => {
      if (message[0] === ASK_DOWN) {
        const { totalBytes, messageBytes } = readAskDown(message);
        for (const part of transfer(totalBytes, messageBytes, DOWN, LAST_DOWN)) void channel.send(part);
      } else if (message[0] === LAST_UP) {
        void channel.send(Uint8Array.of(UP_DONE));
      } else if (message[0] !== UP) {
        console.warn(`  bench server: unexpected message ${message[0]}`);
      }
    },
    (error) => console.warn(`  bench server: ${error.code}: ${error.message}`),
    benchSettings.highWaterBytes || undefined,
  );
  connection.onData((data) => channel.receive(data));
  connection.onClose(() => channel.close());
  void channel.send(Uint8Array.of(READY));
}
