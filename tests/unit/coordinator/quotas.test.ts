// Job limits and per-key quotas as numbers: what a job costs, what the defaults allow, and holds that count each other.
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../../src/coordinator/http-error.ts';
import { gemmFootprint, Quotas, type KeyUsage } from '../../../src/coordinator/quotas.ts';

const MiB = 1024 * 1024;

function refusal(action: () => unknown): { status: number; code: string; message: string } | undefined {
  try {
    action();
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
  return undefined;
}

describe('job limits', () => {
  it('costs a 4096^3 f32 job 128 MiB of operands and a 64 MiB product, and an f16 one its halves and their f32 values too', () => {
    expect(gemmFootprint(4096, 4096, 4096, 'f32')).toEqual({ operandBytes: 128 * MiB, productBytes: 64 * MiB, heldBytes: 192 * MiB });
    expect(gemmFootprint(4096, 4096, 4096, 'f16').heldBytes).toBe(192 * MiB + 64 * MiB);
  });

  it('refuses a 1 GiB product from a 128 KiB body, and operands over 512 MiB first', () => {
    expect(refusal(() => gemmFootprint(16384, 16384, 1, 'f32'))).toMatchObject({ status: 413, code: 'product-too-large' });
    expect(refusal(() => gemmFootprint(8192, 8192, 8192, 'f32'))).toBeUndefined();
    expect(refusal(() => gemmFootprint(8192, 8193, 1, 'f32'))?.code).toBe('product-too-large');
    expect(refusal(() => gemmFootprint(16384, 16384, 16384, 'f32'))?.code).toBe('job-too-large');
  });
});

describe('per-key quotas, default limits', () => {
  const none = (): KeyUsage => ({ openJobs: 0, heldBytes: 0 });

  it('holds five 4096^3 jobs of one key at once and refuses a sixth, not another key\'s', () => {
    const quotas = new Quotas({}, none);
    const job = gemmFootprint(4096, 4096, 4096, 'f32');
    const holds = Array.from({ length: 5 }, () => quotas.hold('key-a', job));
    const sixth = refusal(() => quotas.hold('key-a', job));
    expect(sixth).toMatchObject({ status: 429, code: 'quota-exceeded' });
    expect(sixth?.message).toContain(String(5 * 192 * MiB));
    expect(refusal(() => quotas.hold('key-b', job))).toBeUndefined();
    holds[0].release();
    holds[0].release(); // twice frees it once
    expect(refusal(() => quotas.hold('key-a', job))).toBeUndefined();
    expect(refusal(() => quotas.hold('key-a', job))?.code).toBe('quota-exceeded');
  });

  it('fits the largest job, 8192^3 in f16, alone', () => {
    const quotas = new Quotas({}, none);
    expect(refusal(() => quotas.hold('key-a', gemmFootprint(8192, 8192, 8192, 'f16')))).toBeUndefined();
    expect(refusal(() => quotas.hold('key-a', gemmFootprint(1, 1, 1, 'f32')))?.code).toBe('quota-exceeded');
  });

  it('counts jobs already in the scheduler with those being uploaded', () => {
    const quotas = new Quotas({ openJobs: 3 }, () => ({ openJobs: 2, heldBytes: 0 }));
    quotas.hold('key-a', gemmFootprint(2, 2, 2, 'f32'));
    expect(refusal(() => quotas.hold('key-a', gemmFootprint(2, 2, 2, 'f32')))?.message).toMatch(/3 open jobs/);
  });
});
