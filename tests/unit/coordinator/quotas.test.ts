// Job limits and per-key quotas as numbers: what a job costs, what the defaults allow, and holds that count each other.
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../../src/coordinator/http-error.ts';
import { Quotas, type KeyUsage } from '../../../src/coordinator/quotas.ts';
import { gemmKind, type GemmPrecision } from '../../../src/work/gemm/gemm.ts';
import type { JobFootprint } from '../../../src/work/kind.ts';

const MiB = 1024 * 1024;

/** The gemm kind's footprint of an m x n x k job, or the HTTP refusal of it (the API maps the code to 413). */
function gemmFootprint(m: number, n: number, k: number, precision: GemmPrecision): JobFootprint {
  const footprint = gemmKind.footprint({ m, n, k, precision });
  if (!footprint.ok) throw new HttpError(413, footprint.error.code, footprint.error.message);
  return footprint.value;
}

async function refusal(action: () => unknown): Promise<{ status: number; code: string; message: string } | undefined> {
  try {
    await action();
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
  return undefined;
}

describe('job limits', () => {
  it('costs a 4096^3 f32 job 128 MiB of operands and a 64 MiB product, and an f16 one its halves and their f32 values too', () => {
    expect(gemmFootprint(4096, 4096, 4096, 'f32')).toEqual({ bodyBytes: 128 * MiB, outputBytes: 64 * MiB, heldBytes: 192 * MiB });
    expect(gemmFootprint(4096, 4096, 4096, 'f16').heldBytes).toBe(192 * MiB + 64 * MiB);
  });

  it('refuses a 1 GiB product from a 128 KiB body, and operands over 512 MiB first', async () => {
    expect(await refusal(() => gemmFootprint(16384, 16384, 1, 'f32'))).toMatchObject({ status: 413, code: 'product-too-large' });
    expect(await refusal(() => gemmFootprint(8192, 8192, 8192, 'f32'))).toBeUndefined();
    expect((await refusal(() => gemmFootprint(8192, 8193, 1, 'f32')))?.code).toBe('product-too-large');
    expect((await refusal(() => gemmFootprint(16384, 16384, 16384, 'f32')))?.code).toBe('job-too-large');
  });
});

describe('per-key quotas, default limits', () => {
  const none = async (): Promise<KeyUsage> => ({ openJobs: 0, heldBytes: 0 });

  it('holds five 4096^3 jobs of one key at once and refuses a sixth, not another key\'s', async () => {
    const quotas = new Quotas({}, none);
    const job = gemmFootprint(4096, 4096, 4096, 'f32');
    const holds = [];
    for (let i = 0; i < 5; i++) holds.push(await quotas.hold('key-a', job));
    const sixth = await refusal(() => quotas.hold('key-a', job));
    expect(sixth).toMatchObject({ status: 429, code: 'quota-exceeded' });
    expect(sixth?.message).toContain(String(5 * 192 * MiB));
    expect(await refusal(() => quotas.hold('key-b', job))).toBeUndefined();
    holds[0].release();
    holds[0].release(); // twice frees it once
    expect(await refusal(() => quotas.hold('key-a', job))).toBeUndefined();
    expect((await refusal(() => quotas.hold('key-a', job)))?.code).toBe('quota-exceeded');
  });

  it('fits the largest job, 8192^3 in f16, alone', async () => {
    const quotas = new Quotas({}, none);
    expect(await refusal(() => quotas.hold('key-a', gemmFootprint(8192, 8192, 8192, 'f16')))).toBeUndefined();
    expect((await refusal(() => quotas.hold('key-a', gemmFootprint(1, 1, 1, 'f32'))))?.code).toBe('quota-exceeded');
  });

  it('counts jobs already in the queue with those being uploaded', async () => {
    const quotas = new Quotas({ openJobs: 3 }, async () => ({ openJobs: 2, heldBytes: 0 }));
    await quotas.hold('key-a', gemmFootprint(2, 2, 2, 'f32'));
    expect((await refusal(() => quotas.hold('key-a', gemmFootprint(2, 2, 2, 'f32'))))?.message).toMatch(/3 open jobs/);
  });
});
