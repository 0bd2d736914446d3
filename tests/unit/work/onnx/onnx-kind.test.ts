import { describe, expect, it } from 'vitest';
import { ndarray } from '../../../../src/protocol/npy.ts';
import { encodeNpz } from '../../../../src/protocol/npz.ts';
import { f32Tensor } from '../../../../src/protocol/tensor.ts';
import { ONNX_RUNTIME, type OnnxRunner } from '../../../../src/work/onnx/model.ts';
import type { ModelCatalog, ModelInfo, ShapeProfile } from '../../../../src/work/onnx/model.ts';
import { writeNpz } from '../../../../src/work/onnx/npz.ts';
import { onnxKind, packResult, RESULT_COLUMNS, UNIT_TARGET_OPS } from '../../../../src/work/onnx/onnx.ts';

const SHA = 'a'.repeat(64);
const model: ModelInfo = {
  sha256: SHA, byteLength: 1, opTypes: ['MatMul', 'Sigmoid'], outputRanges: { p: [0, 1] }, tolerance: { abs: 1e-4, rel: 1e-3 },
  inputs: [{ name: 'x', dtype: 'float32', shape: ['n', 4] }],
  outputs: [{ name: 'p', dtype: 'float32', shape: ['n', 2] }, { name: 'q', dtype: 'float32', shape: ['n', 3] }],
};
// A sample costs a third of a unit's target: units of 3 samples.
const profile: ShapeProfile = { opsPerSample: UNIT_TARGET_OPS / 3n, outputShapes: [[2], [3]] };
const catalog: ModelCatalog = {
  model: (sha) => (sha === SHA ? model : undefined),
  profile: () => profile,
  measure: async () => profile,
};
const kind = onnxKind(catalog);

function job(batch: number) {
  const body = writeNpz(new Map([['x', { shape: [batch, 4], data: Float32Array.from({ length: batch * 4 }, (_, i) => i) }]]));
  const params = kind.parseParams({ model: SHA, 'content-length': String(body.byteLength) });
  if (!params.ok) throw new Error(params.error.message);
  const created = kind.createJob('j', params.value, body);
  if (!created.ok) throw new Error(created.error.message);
  return created.value.job;
}

describe('the onnx kind', () => {
  it('splits a batch into units of about UNIT_TARGET_OPS, and each unit pays for its samples', () => {
    const units = kind.split(job(8));
    expect(units.map((u) => [u.start, u.count])).toEqual([[0, 3], [3, 3], [6, 2]]);
    expect(units.map((u) => kind.ops(u))).toEqual([3n, 3n, 2n].map((n) => n * profile.opsPerSample));
  });

  it('names a unit its samples of each input as a block to fetch by hash, and names the model, inputs and outputs', () => {
    const j = job(8);
    const [first, unit] = kind.split(j);
    const payload = kind.leasePayload(j, unit);
    expect(payload.params).toEqual({ model: SHA, inputNames: '["x"]', outputNames: '["p","q"]' });
    expect(payload.operands).toEqual({});
    const block = payload.blocks?.i0;
    expect(block).toMatchObject({ dtype: 'f32', shape: [3, 4] });
    const bytes = block?.bytes() ?? new Uint8Array(0);
    expect([...new Float32Array(Uint8Array.from(bytes).buffer)]).toEqual(Array.from({ length: 12 }, (_, i) => 12 + i));
    // Deterministic, as the coordinator recomputes a block its cache dropped; each unit's block has its own key.
    expect(kind.leasePayload(j, unit).blocks?.i0.bytes()).toEqual(bytes);
    expect(kind.leasePayload(j, first).blocks?.i0.key).not.toBe(block?.key);
  });

  it('takes a packed result of the right size, and refuses other sizes, dtypes and non-zero padding', () => {
    const j = job(8);
    const unit = kind.split(j)[2]; // 2 samples: 4 + 6 values
    const good = packResult([Float32Array.from([0.1, 0.2, 0.3, 0.4]), Float32Array.from([1, 2, 3, 4, 5, 6])]);
    expect(good.shape).toEqual([1, RESULT_COLUMNS]);
    expect(kind.decodeResult(j, unit, good)).toMatchObject({ ok: true });
    expect(kind.decodeResult(j, unit, f32Tensor([2, RESULT_COLUMNS], new Float32Array(2 * RESULT_COLUMNS)))).toMatchObject({ ok: false, error: { code: 'shape-mismatch' } });
    const padded = new Float32Array(RESULT_COLUMNS);
    padded[500] = 1;
    expect(kind.decodeResult(j, unit, f32Tensor([1, RESULT_COLUMNS], padded))).toMatchObject({ ok: false, error: { code: 'shape-mismatch' } });
  });

  it('refuses an unknown model, a missing Content-Length and bodies over the limit', () => {
    expect(kind.parseParams({ model: 'b'.repeat(64), 'content-length': '10' })).toMatchObject({ ok: false, error: { code: 'unknown-model' } });
    expect(kind.parseParams({ model: SHA })).toMatchObject({ ok: false, error: { code: 'bad-body-length' } });
    expect(kind.footprint({ model: SHA, bodyBytes: 2 ** 30 })).toMatchObject({ ok: false, error: { code: 'job-too-large' } });
  });

  it('charges a stored job its exact output, not the bound charged before its inputs are read', () => {
    const j = job(8);
    const before = kind.footprint({ model: SHA, bodyBytes: j.bodyBytes });
    const stored = kind.footprint(kind.params(j));
    // 8 samples of 2 + 3 float32 outputs
    expect(stored).toMatchObject({ ok: true, value: { outputBytes: 8 * 5 * 4, heldBytes: 2 * j.bodyBytes + 160 } });
    expect(before.ok && before.value.outputBytes).toBeGreaterThan(160);
  });

  it('assembles the outputs in batch order, one array per output', () => {
    const j = job(5);
    const results = new Map(kind.split(j).map((u) => {
      const p = Float32Array.from({ length: u.count * 2 }, (_, i) => u.start * 2 + i);
      const q = Float32Array.from({ length: u.count * 3 }, (_, i) => 100 + u.start * 3 + i);
      return [u.id, Float32Array.from([...p, ...q])];
    }));
    const out = kind.assemble(j, results);
    expect(out.get('p')).toEqual({ shape: [5, 2], data: Float32Array.from({ length: 10 }, (_, i) => i) });
    expect(out.get('q')).toEqual({ shape: [5, 3], data: Float32Array.from({ length: 15 }, (_, i) => 100 + i) });
  });

  describe('uint8 inputs', () => {
    const normalize = { scale: [2, 1, 0.5, 0.25], offset: [-1, 0, 1, 2] };
    const u8Body = (batch: number, channels = 4) => {
      const zip = encodeNpz(new Map([['x', ndarray('u1', [batch, channels], Uint8Array.from({ length: batch * channels }, (_, i) => i))]]));
      return new Uint8Array(zip.buffer as ArrayBuffer, zip.byteOffset, zip.byteLength);
    };
    const create = (body: Uint8Array<ArrayBuffer>, extra: Record<string, unknown>) => {
      const params = kind.parseParams({ model: SHA, 'content-length': String(body.byteLength), ...extra });
      if (!params.ok) return params;
      return kind.createJob('u', params.value, body);
    };

    it('leases the bytes with their normalisation, and the audit re-runs on the normalised floats', async () => {
      const created = create(u8Body(8), { normalize: JSON.stringify(normalize) });
      if (!created.ok) throw new Error(created.error.message);
      const j = created.value.job;
      const unit = kind.split(j)[1];
      const payload = kind.leasePayload(j, unit);
      // The bytes as sent, one per value: the miner normalises them, as the audit does.
      expect(payload.blocks?.i0).toMatchObject({ dtype: 'u8', shape: [3, 4] });
      expect([...(payload.blocks?.i0.bytes() ?? [])]).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
      expect(JSON.parse(String(payload.params.normalize))).toEqual(normalize);
      // What the coordinator's re-run is fed: x * scale[c] + offset[c].
      let fed: number[] = [];
      const runner: OnnxRunner = {
        run: async (_sha, inputs) => {
          fed = [...(inputs.get('x')?.data ?? [])];
          return new Map([['p', { shape: [3, 2], data: new Float32Array(6) }], ['q', { shape: [3, 3], data: new Float32Array(9) }]]);
        },
      };
      const verdict = await kind.audit?.({ random: () => {}, runtimes: { [ONNX_RUNTIME]: runner } }, j, unit, new Float32Array(15));
      expect(verdict).toEqual({ ok: true });
      expect(fed.slice(0, 4)).toEqual([12 * 2 - 1, 13, 14 * 0.5 + 1, 15 * 0.25 + 2]);
      // Stored and restored with its normalisation.
      const restored = kind.restoreJob('u', JSON.parse(JSON.stringify(kind.params(j))), [created.value.operands[0]]);
      expect(restored.normalize).toEqual(normalize);
    });

    it('refuses uint8 without a normalisation, one of another channel count, and a malformed one', () => {
      expect(create(u8Body(2), {})).toMatchObject({ ok: false, error: { code: 'bad-dtype' } });
      expect(create(u8Body(2), { normalize: JSON.stringify({ scale: [1, 1], offset: [0, 0] }) })).toMatchObject({ ok: false, error: { code: 'bad-shape' } });
      expect(create(u8Body(2), { normalize: '{"scale":[1]}' })).toMatchObject({ ok: false, error: { code: 'bad-params' } });
      expect(create(u8Body(2), { normalize: 'not json' })).toMatchObject({ ok: false, error: { code: 'bad-params' } });
      // One a lease could not carry (its text parameters are at most 256 characters): refused at submission.
      const long = JSON.stringify({ scale: Array(16).fill(1 / 255), offset: Array(16).fill(-0.5) });
      expect(kind.parseParams({ model: SHA, 'content-length': '100', normalize: long })).toMatchObject({ ok: false, error: { code: 'bad-params', message: expect.stringMatching(/over the 256 a lease carries/) } });
      expect(create(u8Body(2), { normalize: JSON.stringify({ scale: [1, 2], offset: [0] }) })).toMatchObject({ ok: false, error: { code: 'bad-params' } });
    });
  });
});
