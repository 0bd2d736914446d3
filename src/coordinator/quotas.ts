// What one job may ask of the coordinator, and what one requester's key may hold on it at once: checked before a body is read.
import { HttpError } from './http-error.ts';
import type { Scheduler } from './scheduler.ts';

const MiB = 1024 * 1024;

/** The largest job body (A and B) accepted: 512 MiB, e.g. two 8192x8192 f32 operands. */
export const MAX_OPERAND_BYTES = 512 * MiB;
/**
 * The largest product: 256 MiB, the 8192x8192 product of the largest square operands. Without it, a 128 KiB body
 * (16384x1 by 1x16384) queues a 1 GiB product, held in memory until its requester deletes it.
 */
export const MAX_PRODUCT_BYTES = 256 * MiB;

export interface RequesterQuota {
  /** queued and running jobs a key may have at once */
  openJobs: number;
  /**
   * bytes a key's jobs may hold in the coordinator's memory: open jobs' operands and products, finished jobs'
   * products until deleted or expired, and uploads in progress
   */
  heldBytes: number;
}

/**
 * 64 open jobs is far more than a script needs to keep miners busy. 1 GiB fits the largest job (8192^3 in f16:
 * 256 MiB of halves, 512 MiB of their f32 values, a 256 MiB product) or five 4096^3 f32 jobs (192 MiB each).
 */
export const REQUESTER_QUOTA: RequesterQuota = { openJobs: 64, heldBytes: 1024 * MiB };

/** What a GEMM job costs the coordinator: its body, its product, and what it holds in memory while open. */
export interface JobFootprint {
  operandBytes: number;
  productBytes: number;
  heldBytes: number;
}

/** Memory an open m x n x k job holds: its operands (an f16 job both its halves and their f32 values) and its product. */
export function gemmHeldBytes(m: number, n: number, k: number, precision: 'f32' | 'f16'): number {
  return (m * k + k * n) * (precision === 'f16' ? 6 : 4) + 4 * m * n;
}

/** The footprint of an m x n x k job; a 413 when its operands or its product are over the limits. */
export function gemmFootprint(m: number, n: number, k: number, precision: 'f32' | 'f16'): JobFootprint {
  const operandBytes = 4 * (m * k + k * n);
  if (operandBytes > MAX_OPERAND_BYTES) {
    throw new HttpError(413, 'job-too-large', `operands of ${operandBytes} bytes exceed the limit of ${MAX_OPERAND_BYTES}`);
  }
  const productBytes = 4 * m * n;
  if (productBytes > MAX_PRODUCT_BYTES) {
    throw new HttpError(413, 'product-too-large', `a ${m}x${n} product is ${productBytes} bytes, over the limit of ${MAX_PRODUCT_BYTES}; split the job`);
  }
  return { operandBytes, productBytes, heldBytes: gemmHeldBytes(m, n, k, precision) };
}

export interface KeyUsage {
  openJobs: number;
  heldBytes: number;
}

/** What a key's jobs in the scheduler hold: an open job its operands and product, a finished one its product. */
export function schedulerUsage(scheduler: Scheduler, owner: string): KeyUsage {
  const usage: KeyUsage = { openJobs: 0, heldBytes: 0 };
  for (const id of scheduler.jobIds()) {
    const state = scheduler.job(id);
    if (!state || state.owner !== owner) continue;
    if (state.output) {
      usage.heldBytes += state.output.byteLength;
    } else {
      const { m, n, k, precision } = state.job;
      usage.openJobs++;
      usage.heldBytes += gemmHeldBytes(m, n, k, precision);
    }
  }
  return usage;
}

/** A job's footprint held against its key from before its body is read until it is in the scheduler, or refused. */
export interface QuotaHold {
  release(): void;
}

export class Quotas {
  /** Footprints of jobs being uploaded and stored, per key: not in the scheduler yet, but already spoken for. */
  private readonly pending = new Map<string, KeyUsage>();
  private readonly quota: RequesterQuota;

  constructor(quota: Partial<RequesterQuota>, private readonly usage: (owner: string) => KeyUsage) {
    this.quota = { ...REQUESTER_QUOTA, ...quota };
  }

  /**
   * Holds a new job's footprint against its key, or refuses it with 429 when the key's jobs would then be over its
   * quota. Holding before the body is read makes concurrent submits count each other.
   */
  hold(owner: string, footprint: JobFootprint): QuotaHold {
    const stored = this.usage(owner);
    const pending = this.pending.get(owner) ?? { openJobs: 0, heldBytes: 0 };
    const openJobs = stored.openJobs + pending.openJobs;
    const heldBytes = stored.heldBytes + pending.heldBytes;
    if (openJobs + 1 > this.quota.openJobs) {
      throw new HttpError(429, 'quota-exceeded', `this API key has ${openJobs} open jobs, the most it may have at once; wait for one to finish or delete one`);
    }
    if (heldBytes + footprint.heldBytes > this.quota.heldBytes) {
      throw new HttpError(
        429,
        'quota-exceeded',
        `this API key's jobs hold ${heldBytes} bytes on the coordinator and this one needs ${footprint.heldBytes}, over the key's ` +
          `limit of ${this.quota.heldBytes}; fetch and delete finished jobs, or wait for open ones`,
      );
    }
    this.pending.set(owner, { openJobs: pending.openJobs + 1, heldBytes: pending.heldBytes + footprint.heldBytes });
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = this.pending.get(owner);
        if (!now) return;
        if (now.openJobs <= 1) this.pending.delete(owner);
        else this.pending.set(owner, { openJobs: now.openJobs - 1, heldBytes: now.heldBytes - footprint.heldBytes });
      },
    };
  }
}
