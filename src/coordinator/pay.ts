// What verified work earns: integer micro-credits per operation, never floats.

/** One credit (1,000,000 micro-credits) per verified GFLOP of f32 GEMM. */
export const MICRO_CREDITS_PER_GIGA_OP = 1_000_000n;

export function microCreditsFor(ops: bigint): bigint {
  return (ops * MICRO_CREDITS_PER_GIGA_OP) / 1_000_000_000n;
}
