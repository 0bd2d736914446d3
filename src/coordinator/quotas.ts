// What one requester's key may hold on the coordinator at once, whatever the kinds of its jobs: checked before a
// body is read. (What one job may ask is its kind's footprint, with the kind's limits.)
import type { JobFootprint } from '../work/kind.ts';
import { HttpError } from './http-error.ts';
import type { WorkQueue } from './queue.ts';

const MiB = 1024 * 1024;

export interface RequesterQuota {
  /** queued and running jobs a key may have at once */
  openJobs: number;
  /**
   * bytes a key's jobs may hold in the coordinator's memory: open jobs' operands and outputs, finished jobs'
   * outputs until deleted or expired, and uploads in progress
   */
  heldBytes: number;
}

/**
 * 64 open jobs is far more than a script needs to keep miners busy. 1 GiB fits the largest matrix product the
 * built-in kinds take (8192^3 with f16 operands: 256 MiB of halves, 512 MiB of their f32 values, a 256 MiB product)
 * or five 4096^3 f32 ones (192 MiB each).
 */
export const REQUESTER_QUOTA: RequesterQuota = { openJobs: 64, heldBytes: 1024 * MiB };

export interface KeyUsage {
  openJobs: number;
  heldBytes: number;
}

/** What a key's jobs in the queue hold: an open job its footprint, a finished one its output. */
export async function queueUsage(queue: WorkQueue, owner: string): Promise<KeyUsage> {
  const usage: KeyUsage = { openJobs: 0, heldBytes: 0 };
  for (const id of await queue.jobIds()) {
    const state = await queue.job(id);
    if (!state || state.owner !== owner) continue;
    if (state.output) {
      usage.heldBytes += state.output.body.byteLength;
    } else {
      usage.openJobs++;
      usage.heldBytes += state.heldBytes;
    }
  }
  return usage;
}

/** A job's footprint held against its key from before its body is read until it is in the queue, or refused. */
export interface QuotaHold {
  release(): void;
}

export class Quotas {
  /** Footprints of jobs being uploaded and stored, per key: not in the queue yet, but already spoken for. */
  private readonly pending = new Map<string, KeyUsage>();
  private readonly quota: RequesterQuota;

  constructor(quota: Partial<RequesterQuota>, private readonly usage: (owner: string) => Promise<KeyUsage>) {
    this.quota = { ...REQUESTER_QUOTA, ...quota };
  }

  /**
   * Holds a new job's footprint against its key, or refuses it with 429 when the key's jobs would then be over its
   * quota. Holding before the body is read makes concurrent submits count each other.
   */
  async hold(owner: string, footprint: JobFootprint): Promise<QuotaHold> {
    const stored = await this.usage(owner);
    // From here to the end the check and the hold are one synchronous step: concurrent submits see each other.
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
