// Lease ids a coordinator knows for its own after a restart: a random id and a MAC under a key derived from the
// receipt-signing key, which outlives the process. The in-memory queue forgets its leases when the process ends; a
// page that kept a result across the restart (or across its own reload) is then told its lease ended, not blamed.
import { createHmac, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { SigningKey } from './signing-key.ts';

/** 64 bits of MAC: a made-up id passes with odds of 2^-64, and passing earns only a refusal without blame. */
const MAC_HEX_CHARS = 16;
const LEASE_ID = /^([0-9a-f-]{36})\.([0-9a-f]{16})$/;

export class LeaseIds {
  private constructor(private readonly key: Uint8Array) {}

  /** Ids only this process knows: for queues whose leases outlive nothing (tests, a coordinator without a key). */
  static random(): LeaseIds {
    return new LeaseIds(randomBytes(32));
  }

  /** Ids every run of the coordinator with this signing key knows. */
  static async of(signingKey: SigningKey): Promise<LeaseIds> {
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', signingKey.privateKey));
    return new LeaseIds(new Uint8Array(hkdfSync('sha256', pkcs8, new Uint8Array(0), 'ergon lease ids', 32)));
  }

  mint(): string {
    const id = randomUUID();
    return `${id}.${this.mac(id)}`;
  }

  /** Whether this id was minted under this key: by this coordinator, in this run or an earlier one. */
  minted(leaseId: string): boolean {
    const match = LEASE_ID.exec(leaseId);
    return match !== null && timingSafeEqual(Buffer.from(match[2]), Buffer.from(this.mac(match[1])));
  }

  private mac(id: string): string {
    return createHmac('sha256', this.key).update(id).digest('hex').slice(0, MAC_HEX_CHARS);
  }
}
