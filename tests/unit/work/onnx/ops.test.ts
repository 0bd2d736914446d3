import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { nodeOps } from '../../../../src/work/onnx/ops.ts';
import { ModelStore, ocrAsset } from '../../../../src/coordinator/model-store.ts';
import { readGraph } from '../../../../src/work/onnx/graph.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('op counts', () => {
  it('counts each node as worked out by hand', () => {
    // Conv: 16 output channels of 128x448, each a dot product over 3 channels x 3x3: 2 x (16*128*448) x 27.
    expect(nodeOps({ op: 'Conv', inputs: [[1, 3, 256, 896], [16, 3, 3, 3]], outputs: [[1, 16, 128, 448]] })).toBe(2n * 16n * 128n * 448n * 27n);
    // Depthwise conv (group = channels): the weight is [C, 1, k, k], so 9 MACs per output element.
    expect(nodeOps({ op: 'Conv', inputs: [[1, 8, 10, 10], [8, 1, 3, 3]], outputs: [[1, 8, 10, 10]] })).toBe(2n * 800n * 9n);
    // ConvTranspose: each input element meets out-channels x k x k weights.
    expect(nodeOps({ op: 'ConvTranspose', inputs: [[1, 4, 5, 5], [4, 2, 2, 2]], outputs: [[1, 2, 10, 10]] })).toBe(2n * 100n * 8n);
    // MatMul, batched: [2, 3, 4] x [4, 5] -> [2, 3, 5], 4 MACs per output.
    expect(nodeOps({ op: 'MatMul', inputs: [[2, 3, 4], [4, 5]], outputs: [[2, 3, 5]] })).toBe(2n * 30n * 4n);
    // Gemm 6x7 from A 6x9 (or transposed 9x6): K = 9.
    expect(nodeOps({ op: 'Gemm', inputs: [[9, 6], [9, 7]], outputs: [[6, 7]] })).toBe(2n * 42n * 9n);
    expect(nodeOps({ op: 'Sigmoid', inputs: [[3, 5]], outputs: [[3, 5]] })).toBe(15n);
    expect(nodeOps({ op: 'Reshape', inputs: [[3, 5], [2]], outputs: [[5, 3]] })).toBe(0n);
  });

  // NOTES-onnx.md gives det 2.58 GFLOP at 256x896 and rec 1.40 GFLOP at 48x320, multiply-adds only. rec agrees (1.405).
  // det's multiply-adds come to 2.505 G here, 3% under the note; with elementwise ops its total is 2.583 G. The 62 Convs
  // and 2 ConvTransposes are each counted as in the unit test above, from shapes onnxruntime reports: the note's extra
  // 0.075 G is not explained, and this test pins today's count so that a change to it is seen.
  it('counts PaddleOCR det and rec at the sizes NOTES-onnx.md measured', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ergon-ops-'));
    try {
      const store = await ModelStore.open(dir);
      const det = await store.measureDetailed(store.shipped.det, [[3, 256, 896]]);
      const rec = await store.measureDetailed(store.shipped.rec, [[3, 48, 320]]);
      expect(Number(rec.macOps) / 1e9).toBeCloseTo(1.40, 1);
      expect(Number(det.macOps) / 1e9).toBeCloseTo(2.505, 3);
      expect(Number(det.ops) / 1e9).toBeCloseTo(2.58, 2);
      // Elementwise work adds a little: the total is what a unit pays for.
      expect(det.ops).toBe(det.macOps + det.elementwiseOps);
      expect((await store.measure(store.shipped.det, [[3, 256, 896]])).opsPerSample).toBe(det.ops);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('reads the op types of PaddleOCR det, and which op makes its output', async () => {
    const graph = readGraph(await readFile(ocrAsset('ch_PP-OCRv4_det_infer.onnx')));
    expect(new Set(graph.nodes.map((n) => n.opType))).toContain('ConvTranspose');
    expect(graph.outputs).toEqual(['sigmoid_0.tmp_0']);
    expect(graph.nodes.find((n) => n.outputs.includes('sigmoid_0.tmp_0'))?.opType).toBe('Sigmoid');
    expect(() => readGraph(Uint8Array.from([0x3a, 0x20, 0x01]))).toThrow(/truncated/);
  });
});
