// What verified work earns: integer micro-credits per operation, never floats.
import type { Precision } from '../protocol/messages.ts';

/**
 * Micro-credits per verified GFLOP of GEMM: one credit for f32; half for f16 operands, which move half the bytes
 * and which GPUs with fast f16 run at twice the f32 rate or more, so that an op is paid for what it costs to do.
 */
export const MICRO_CREDITS_PER_GIGA_OP: Record<Precision, bigint> = { f32: 1_000_000n, f16: 500_000n };

export function microCreditsFor(ops: bigint, precision: Precision = 'f32'): bigint {
  return (ops * MICRO_CREDITS_PER_GIGA_OP[precision]) / 1_000_000_000n;
}
