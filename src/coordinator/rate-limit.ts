// Token buckets: each miner session and each API key may spend so many requests per second, with a burst.

export interface RateLimit {
  /** tokens added per second */
  perSecond: number;
  /** the bucket's size: how many may arrive at once */
  burst: number;
}

/**
 * Messages a miner may send besides those its leases account for (a work request answered with a lease, and that
 * lease's result are given back): pings, errors and asking when there is no work. 100 a second is far above an
 * honest miner's, which asks at most twice a second while the queue is empty.
 */
export const MINER_MESSAGES: RateLimit = { perSecond: 100, burst: 200 };
/** A requester submits and polls; 20 a second with a burst of 60 leaves room for scripts that poll hard. */
export const API_REQUESTS: RateLimit = { perSecond: 20, burst: 60 };

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(private readonly limit: RateLimit, nowMs: number) {
    this.tokens = limit.burst;
    this.lastMs = nowMs;
  }

  /** Spends one token; false when none is left. */
  take(nowMs: number): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + ((nowMs - this.lastMs) / 1000) * this.limit.perSecond);
    this.lastMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Gives back a token spent on a message that turned out to be owed (a result for a lease, say). */
  refund(): void {
    this.tokens = Math.min(this.limit.burst, this.tokens + 1);
  }

  /** Milliseconds until one token is there again. */
  retryAfterMs(): number {
    return Math.max(0, Math.ceil(((1 - this.tokens) / this.limit.perSecond) * 1000));
  }
}

/** One bucket per key (API key id, miner session), dropped when idle long enough to be full again. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly limit: RateLimit) {}

  bucket(key: string, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.limit, nowMs);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
