import { describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, frames, Reassembler } from '../../../src/protocol/framing.ts';

const message = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31) & 255);

describe('framing', () => {
  it('round-trips messages of 0, 1, exactly one frame and many frames', () => {
    for (const size of [0, 1, 1024, 1025, 5000]) {
      const r = new Reassembler(1 << 20, 1024);
      const all = [...frames(7, message(size), 1024)];
      expect(all.every((f) => f.byteLength <= 1024 + FRAME_HEADER_BYTES)).toBe(true);
      const outs = all.map((f) => r.push(f, 0));
      expect(outs.slice(0, -1).every((o) => o.ok && o.value === null)).toBe(true);
      const last = outs[outs.length - 1];
      expect(last.ok && last.value).toEqual(message(size));
    }
  });

  it('refuses a declared size over the limit before allocating', () => {
    const r = new Reassembler(4096, 1024);
    const [first] = frames(1, message(10), 1024);
    new DataView(first.buffer).setUint32(16, 1 << 30, true);
    const out = r.push(first, 0);
    expect(out.ok ? '' : out.error.code).toBe('message-too-large');
  });

  it('refuses garbage, out-of-order and interleaved frames, then recovers', () => {
    const r = new Reassembler(1 << 20, 1024);
    expect(r.push(new Uint8Array([1, 2, 3]), 0).ok).toBe(false);
    expect(r.push(new Uint8Array(40), 0).ok).toBe(false);
    const a = [...frames(1, message(3000), 1024)];
    expect(r.push(a[0], 0).ok).toBe(true);
    expect(r.push(a[2], 0).ok).toBe(false);
    const b = [...frames(2, message(2000), 1024)];
    expect(r.push(b[0], 0).ok).toBe(true);
    const out = r.push(b[1], 0);
    expect(out.ok && out.value).toEqual(message(2000));
  });

  it('drops a message whose frames stop arriving', () => {
    const r = new Reassembler(1 << 20, 1024);
    const a = [...frames(1, message(3000), 1024)];
    r.push(a[0], 0);
    expect(r.expireStalled(1_000, 15_000)).toBe(false);
    expect(r.expireStalled(16_000, 15_000)).toBe(true);
    expect(r.push(a[1], 16_001).ok).toBe(false);
  });
});
