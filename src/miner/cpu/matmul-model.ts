// Encodes a one-node ONNX model, Y = MatMul(A, B) in f32, as protobuf bytes: no files, no dependencies.
// The CPU fallback runs it on onnxruntime-web's WASM backend; the GEMM benchmark uses it as a peer.

/** ONNX IR version 8 and opset 13: supported by every onnxruntime-web of the last years. */
const IR_VERSION = 8;
const OPSET = 13;
/** TensorProto.DataType.FLOAT */
const ONNX_FLOAT = 1;

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

/** A dimension: a fixed size, or a name that the session binds at run time. */
export type Dim = number | string;

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

/** TensorShapeProto.Dimension: dim_value (1) for a size, dim_param (2) for a symbolic name. */
const dimension = (d: Dim): number[] => (typeof d === 'number' ? intField(1, d) : stringField(2, d));

/** ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT, shape { dim... } } } } */
function tensorInfo(name: string, dims: Dim[]): number[] {
  const shape = dims.flatMap((d) => bytesField(1, dimension(d)));
  const tensorType = [...intField(1, ONNX_FLOAT), ...bytesField(2, shape)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** ModelProto for inputs A [m, k] and B [k, n] and output Y [m, n]; symbolic by default, so one session fits all. */
export function matMulModel(shape: { m: Dim; k: Dim; n: Dim } = { m: 'M', k: 'K', n: 'N' }): Uint8Array<ArrayBuffer> {
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
  const model = [...intField(1, IR_VERSION), ...stringField(2, 'ergon'), ...bytesField(7, graph), ...bytesField(8, opset)];
  return Uint8Array.from(model);
}
