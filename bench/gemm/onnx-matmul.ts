// Encodes a one-node ONNX model, Y = MatMul(A, B) with fixed f32 shapes, as protobuf bytes: no files, no deps.
import type { Shape } from './bench-api.ts';

/** ONNX IR version 8 and opset 13: supported by every onnxruntime-web of the last years. */
const IR_VERSION = 8;
const OPSET = 13;
/** TensorProto.DataType.FLOAT */
const ONNX_FLOAT = 1;

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const intField = (field: number, value: number): number[] => [...key(field, WIRE_VARINT), ...varint(value)];
const bytesField = (field: number, bytes: number[]): number[] => [...key(field, WIRE_BYTES), ...varint(bytes.length), ...bytes];
const stringField = (field: number, text: string): number[] => bytesField(field, [...new TextEncoder().encode(text)]);

/** ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT, shape { dim { dim_value }... } } } } */
function tensorInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytesField(1, intField(1, d)));
  const tensorType = [...intField(1, ONNX_FLOAT), ...bytesField(2, shape)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** ModelProto for inputs A [m, k] and B [k, n] and output Y [m, n]. */
export function matMulModel(shape: Shape): Uint8Array {
  const { m, k, n } = shape;
  const node = [...stringField(1, 'A'), ...stringField(1, 'B'), ...stringField(2, 'Y'), ...stringField(3, 'matmul'), ...stringField(4, 'MatMul')];
  const graph = [
    ...bytesField(1, node),
    ...stringField(2, 'gemm'),
    ...bytesField(11, tensorInfo('A', [m, k])),
    ...bytesField(11, tensorInfo('B', [k, n])),
    ...bytesField(12, tensorInfo('Y', [m, n])),
  ];
  const opset = [...stringField(1, ''), ...intField(2, OPSET)];
  const model = [...intField(1, IR_VERSION), ...stringField(2, 'ergon-bench'), ...bytesField(7, graph), ...bytesField(8, opset)];
  return Uint8Array.from(model);
}
