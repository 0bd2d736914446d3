// What every implementation under test offers the bench page: one prepared shape, timed runs, its product.
import type { ImplInfo, RunTiming } from './bench-api.ts';

export interface Runner {
  readonly info: ImplInfo;
  /** One run on the prepared operands. */
  time(): Promise<RunTiming>;
  /** C of the latest run, read back to JavaScript. */
  product(): Promise<Float32Array>;
  release(): Promise<void>;
}

export const nowSeconds = (): number => performance.now() / 1000;
