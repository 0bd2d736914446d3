import { describe, expect, it } from 'vitest';
import { encode } from '@msgpack/msgpack';
import { encodeMessage, parseCoordinatorMessage, parseMinerMessage } from '../../../src/protocol/codec.ts';
import { f16Halves, f16Tensor, f32Tensor, f32Values } from '../../../src/protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../../../src/protocol/version.ts';

describe('codec', () => {
  it('round-trips a result with its tensor as binary, not numbers', () => {
    const values = Float32Array.from([1.5, -2, 3.25, 1e-30, 7, 8]);
    const bytes = encodeMessage({
      type: 'result', v: PROTOCOL_VERSION, leaseId: 'l1', unitId: 'j.0.0', gpuSeconds: 0.5, output: f32Tensor([2, 3], values),
    });
    expect(bytes.byteLength).toBeLessThan(120);
    const parsed = parseMinerMessage(bytes);
    expect(parsed.ok).toBe(true);
    if (parsed.ok && parsed.value.type === 'result') expect(f32Values(parsed.value.output)).toEqual(values);
  });

  it('round-trips an f16 lease as halves, two bytes a value, and will not read them as f32', () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x8000]); // 1, -2, ~1/3, tiny, max, -0
    const bytes = encodeMessage({
      type: 'lease', v: PROTOCOL_VERSION, leaseId: 'l1', unitId: 'j.0.0', kind: 'gemm', ops: 24, deadlineMs: 1000,
      operands: { a: f16Tensor([2, 3], halves), b: f16Tensor([3, 2], halves) }, params: {},
    });
    const parsed = parseCoordinatorMessage(bytes);
    if (!parsed.ok || parsed.value.type !== 'lease') throw new Error('expected a lease');
    const { a } = parsed.value.operands;
    if (!a) throw new Error('expected operand a');
    expect(a.data.byteLength).toBe(12);
    expect(f16Halves(a)).toEqual(halves);
    expect(() => f32Values(a)).toThrow(/f16/);
    const short = encode({ type: 'lease', v: PROTOCOL_VERSION, leaseId: 'l', unitId: 'u', kind: 'gemm', ops: 1, deadlineMs: 1,
      operands: { a: { dtype: 'f16', shape: [2, 3], data: new Uint8Array(24) }, b: { dtype: 'f16', shape: [1], data: new Uint8Array(2) } }, params: {} });
    const refused = parseCoordinatorMessage(short);
    expect(refused.ok ? '' : refused.error.message).toMatch(/shape/);
  });

  it('round-trips a receipt with 64-bit integers', () => {
    const receipt = {
      unitId: 'j.0.0', jobId: 'j', kind: 'gemm', minerKey: new Uint8Array(32), coordinatorKey: new Uint8Array(32),
      ops: 2n ** 40n + 1n, microCredits: 12n, gpuSeconds: 1, joules: 0, joulesSource: 'none', issuedAtMs: BigInt(Date.now()),
      signature: new Uint8Array(64),
    };
    const parsed = parseCoordinatorMessage(encodeMessage({ type: 'receipt', v: PROTOCOL_VERSION, receipt }));
    expect(parsed.ok && parsed.value.type === 'receipt' && parsed.value.receipt.ops).toBe(2n ** 40n + 1n);
  });

  it('gives a clear error for garbage, an unknown type, a wrong version and a wrong-shaped tensor', () => {
    const cases: [Uint8Array, string, RegExp][] = [
      [new Uint8Array([0xc1]), 'malformed-message', /msgpack/],
      [encode({ type: 'mine-bitcoin', v: PROTOCOL_VERSION }), 'malformed-message', /type/],
      [encode({ type: 'work-request', v: 99 }), 'unsupported-version', /99/],
      [encode({ type: 'result', v: PROTOCOL_VERSION, leaseId: 'l', unitId: 'u', gpuSeconds: 1,
        output: { dtype: 'f32', shape: [2, 2], data: new Uint8Array(12) } }), 'malformed-message', /shape/],
      [encode({ type: 'result', v: PROTOCOL_VERSION, leaseId: 'l', unitId: 'u', gpuSeconds: -1,
        output: { dtype: 'f32', shape: [1], data: new Uint8Array(4) } }), 'malformed-message', /gpuSeconds/],
      [encode({ type: 'result', v: PROTOCOL_VERSION, leaseId: 'l', unitId: 'u', gpuSeconds: 1, engine: 'cuda',
        output: { dtype: 'f32', shape: [1], data: new Uint8Array(4) } }), 'malformed-message', /engine/],
      [encode([1, 2, 3]), 'malformed-message', /.+/],
    ];
    for (const [bytes, code, text] of cases) {
      const parsed = parseMinerMessage(bytes);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) {
        expect(parsed.error.code).toBe(code);
        expect(parsed.error.message).toMatch(text);
      }
    }
  });
});
