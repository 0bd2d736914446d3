// Exact useful operations of one inference, from the graph's nodes and the shapes their tensors really had:
// the basis of an onnx unit's pay and of its ops per joule.
//
// FLOP = 2 x MAC for MatMul, Gemm, Conv, ConvTranspose (and attention, which is MatMuls in the graphs we run);
// elementwise nodes count one op per output element; data movement (Reshape, Transpose, Concat, Slice, Resize,
// pooling, ...) counts nothing.

/** One node as it ran: its op type and the shapes of its inputs and outputs. */
export interface NodeShapes {
  op: string;
  inputs: readonly (readonly number[])[];
  outputs: readonly (readonly number[])[];
}

/** Ops that cost about one arithmetic operation per output element. */
export const ELEMENTWISE_OPS: ReadonlySet<string> = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal', 'Max', 'Min', 'Sum', 'Mean',
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Gelu', 'Softplus',
  'Clip', 'Softmax', 'LogSoftmax', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'Where',
]);

const numel = (shape: readonly number[]): bigint => shape.reduce((n, d) => n * BigInt(d), 1n);

/** FLOP of one node. */
export function nodeOps({ op, inputs, outputs }: NodeShapes): bigint {
  const [x, w] = inputs;
  const [y] = outputs;
  if (!y) return 0n;
  switch (op) {
    case 'Conv':
      // Each output element is a dot product over its group's input channels and the kernel window.
      return w ? 2n * numel(y) * numel(w.slice(1)) : 0n;
    case 'ConvTranspose':
      // Each input element scatters into a kernel window of every output channel of its group.
      return x && w ? 2n * numel(x) * numel(w.slice(1)) : 0n;
    case 'MatMul':
    case 'FusedMatMul':
      return x && x.length > 0 ? 2n * numel(y) * BigInt(x[x.length - 1]) : 0n;
    case 'Gemm': {
      // Y is M x N and A holds M x K elements, whichever way round it is stored.
      if (!x || y.length !== 2 || y[0] === 0) return 0n;
      return 2n * numel(y) * (numel(x) / BigInt(y[0]));
    }
    default:
      return ELEMENTWISE_OPS.has(op) ? numel(y) : 0n;
  }
}

/** FLOP of a whole inference; also the multiply-accumulate part alone (what NOTES-onnx.md's figures count). */
export function inferenceOps(nodes: readonly NodeShapes[]): { ops: bigint; macOps: bigint; elementwiseOps: bigint } {
  let macOps = 0n;
  let elementwiseOps = 0n;
  for (const node of nodes) {
    const ops = nodeOps(node);
    if (ELEMENTWISE_OPS.has(node.op)) elementwiseOps += ops;
    else macOps += ops;
  }
  return { ops: macOps + elementwiseOps, macOps, elementwiseOps };
}
