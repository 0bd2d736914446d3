// Builds small ONNX models in code (protobuf written by hand, weights from a fixed seed): fixtures without binaries.

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

const field = (number: number, wire: number) => varint((number << 3) | wire);
const int = (number: number, value: number): Uint8Array => concat([field(number, 0), varint(value)]);
function bytes(number: number, value: Uint8Array): Uint8Array {
  return concat([field(number, 2), varint(value.length), value]);
}
const str = (number: number, value: string) => bytes(number, new TextEncoder().encode(value));
const msg = (number: number, parts: Uint8Array[]) => bytes(number, concat(parts));

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes?: { name: string; int?: number; ints?: number[] }[];
}

export interface ModelSpec {
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
  initializers: { name: string; shape: number[]; values: Float32Array }[];
  nodes: NodeSpec[];
  opset?: number;
}

function valueInfo(number: number, { name, shape }: { name: string; shape: (number | string)[] }): Uint8Array {
  const dims = shape.map((d) => msg(1, [typeof d === 'number' ? int(1, d) : str(2, d)]));
  const tensorType = msg(1, [int(1, 1), msg(2, dims)]);
  return msg(number, [str(1, name), msg(2, [tensorType])]);
}

/** The .onnx bytes of a model. */
export function buildModel(spec: ModelSpec): Uint8Array<ArrayBuffer> {
  const graph: Uint8Array[] = [];
  for (const [i, node] of spec.nodes.entries()) {
    const parts: Uint8Array[] = [...node.inputs.map((x) => str(1, x)), ...node.outputs.map((x) => str(2, x)), str(3, `n${i}`), str(4, node.op)];
    for (const a of node.attributes ?? []) {
      // AttributeProto: name 1, i 3, ints 8, type 20 (INT 2, INTS 7)
      if (a.int !== undefined) parts.push(msg(5, [str(1, a.name), int(3, a.int), int(20, 2)]));
      if (a.ints) parts.push(msg(5, [str(1, a.name), ...a.ints.map((x) => int(8, x)), int(20, 7)]));
    }
    if (node.domain) parts.push(str(7, node.domain));
    graph.push(msg(1, parts));
  }
  graph.push(str(2, 'g'));
  for (const init of spec.initializers) {
    const raw = new Uint8Array(init.values.buffer, init.values.byteOffset, init.values.byteLength);
    graph.push(msg(5, [...init.shape.map((d) => int(1, d)), int(2, 1), str(8, init.name), bytes(9, Uint8Array.from(raw))]));
  }
  for (const input of spec.inputs) graph.push(valueInfo(11, input));
  for (const output of spec.outputs) graph.push(valueInfo(12, output));
  const opsets = [msg(8, [str(1, ''), int(2, spec.opset ?? 13)])];
  const domains = new Set(spec.nodes.map((n) => n.domain).filter((d): d is string => !!d));
  for (const domain of domains) opsets.push(msg(8, [str(1, domain), int(2, 1)]));
  return concat([int(1, 8), ...opsets, msg(7, graph)]);
}

/** Values in [-1, 1) from a seed. */
export function seeded(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed;
  for (let i = 0; i < count; i++) {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    values[i] = state / 1_073_741_824 - 1;
  }
  return values;
}

/**
 * A two-layer perceptron, x [N, inDim] -> sigmoid(relu(x W1 + b1) W2 + b2) [N, outDim], and its logits: two outputs,
 * one of them a Sigmoid's (checked in [0, 1]).
 */
export function mlpModel(inDim: number, hidden: number, outDim: number, seed: number): Uint8Array<ArrayBuffer> {
  return buildModel({
    inputs: [{ name: 'x', shape: ['batch', inDim] }],
    outputs: [{ name: 'prob', shape: ['batch', outDim] }, { name: 'logits', shape: ['batch', outDim] }],
    initializers: [
      { name: 'w1', shape: [inDim, hidden], values: seeded(inDim * hidden, seed) },
      { name: 'b1', shape: [hidden], values: seeded(hidden, seed + 1) },
      { name: 'w2', shape: [hidden, outDim], values: seeded(hidden * outDim, seed + 2) },
      { name: 'b2', shape: [outDim], values: seeded(outDim, seed + 3) },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h0'] },
      { op: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'] },
      { op: 'Relu', inputs: ['h1'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'w2'], outputs: ['l0'] },
      { op: 'Add', inputs: ['l0', 'b2'], outputs: ['logits'] },
      { op: 'Sigmoid', inputs: ['logits'], outputs: ['prob'] },
    ],
  });
}

/**
 * One transformer block of realistic size, the GEMM-bound case: x [N, 1, seq, dModel] -> y, multi-head
 * self-attention (per-head Q, K, V and output weights [heads, dModel, dHead], so that batched MatMuls broadcast
 * over heads without a Reshape), a residual, a ReLU MLP of 4 x dModel and a second residual. Opset 11, where
 * ReduceSum's axes are an attribute. Weights are seeded, scaled by 1/sqrt(fan-in) so activations stay finite.
 */
export function transformerBlockModel(seq: number, dModel: number, heads: number, seed: number): Uint8Array<ArrayBuffer> {
  const dHead = dModel / heads;
  const hidden = 4 * dModel;
  const weights = (name: string, shape: number[], fanIn: number, offset: number) => {
    const values = seeded(shape.reduce((n, d) => n * d, 1), seed + offset);
    const scale = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < values.length; i++) values[i] *= scale;
    return { name, shape, values };
  };
  const x = ['batch', 1, seq, dModel] as (number | string)[];
  return buildModel({
    opset: 11,
    inputs: [{ name: 'x', shape: x }],
    outputs: [{ name: 'y', shape: x }],
    initializers: [
      weights('wq', [heads, dModel, dHead], dModel, 1),
      weights('wk', [heads, dModel, dHead], dModel, 2),
      weights('wv', [heads, dModel, dHead], dModel, 3),
      weights('wo', [heads, dHead, dModel], dModel, 4),
      { name: 'scale', shape: [1], values: Float32Array.of(1 / Math.sqrt(dHead)) },
      weights('w1', [dModel, hidden], dModel, 5),
      weights('b1', [hidden], 1, 6),
      weights('w2', [hidden, dModel], hidden, 7),
      weights('b2', [dModel], 1, 8),
    ],
    nodes: [
      // [N, 1, S, D] x [H, D, Dh] -> [N, H, S, Dh]
      { op: 'MatMul', inputs: ['x', 'wq'], outputs: ['q'] },
      { op: 'MatMul', inputs: ['x', 'wk'], outputs: ['k'] },
      { op: 'MatMul', inputs: ['x', 'wv'], outputs: ['v'] },
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attributes: [{ name: 'perm', ints: [0, 1, 3, 2] }] },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['s0'] },
      { op: 'Mul', inputs: ['s0', 'scale'], outputs: ['s'] },
      { op: 'Softmax', inputs: ['s'], outputs: ['p'], attributes: [{ name: 'axis', int: 3 }] },
      { op: 'MatMul', inputs: ['p', 'v'], outputs: ['c'] },
      // [N, H, S, Dh] x [H, Dh, D] -> [N, H, S, D], summed over heads: the concatenated heads times Wo.
      { op: 'MatMul', inputs: ['c', 'wo'], outputs: ['o0'] },
      { op: 'ReduceSum', inputs: ['o0'], outputs: ['o'], attributes: [{ name: 'axes', ints: [1] }, { name: 'keepdims', int: 1 }] },
      { op: 'Add', inputs: ['x', 'o'], outputs: ['a'] },
      { op: 'MatMul', inputs: ['a', 'w1'], outputs: ['h0'] },
      { op: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'] },
      { op: 'Relu', inputs: ['h1'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'w2'], outputs: ['m0'] },
      { op: 'Add', inputs: ['m0', 'b2'], outputs: ['m'] },
      { op: 'Add', inputs: ['a', 'm'], outputs: ['y'] },
    ],
  });
}
