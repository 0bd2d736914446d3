// A unit dropped before it ran, because the miner stopped: not a failure, and nothing was computed.
export class UnitCancelledError extends Error {
  constructor() {
    super('the unit was cancelled before it ran');
  }
}
