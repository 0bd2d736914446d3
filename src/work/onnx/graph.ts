// Reads what the coordinator needs of an ONNX model's graph straight from its protobuf bytes: every node's op type
// and domain (subgraphs included) and which op produces each graph output. A minimal wire-format walker, refusing
// malformed bytes with a reason; tensors and attributes other than subgraphs are skipped, never copied.

export interface GraphNode {
  name: string;
  opType: string;
  inputs: string[];
  domain: string;
  outputs: string[];
}

export interface GraphSummary {
  nodes: GraphNode[];
  /** the top-level graph's outputs, by name */
  outputs: string[];
  /** opset version per domain ('' is the default ai.onnx domain) */
  opsets: Record<string, number>;
  /** the top-level graph's initializers (weights): their dimensions by name */
  initializers: Map<string, number[]>;
}

// Field numbers, from onnx.proto.
const MODEL_GRAPH = 7;
const MODEL_OPSET_IMPORT = 8;
const OPSET_DOMAIN = 1;
const OPSET_VERSION = 2;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const TENSOR_DIMS = 1;
const TENSOR_NAME = 8;
const NODE_INPUT = 1;
const NODE_NAME = 3;
const GRAPH_OUTPUT = 12;
const VALUE_INFO_NAME = 1;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
const ATTRIBUTE_G = 6;
const ATTRIBUTE_GRAPHS = 11;
/** Subgraphs (If, Loop, Scan) nest; deeper than this is refused rather than recursed. */
const MAX_DEPTH = 16;

type Field = { number: number; wire: number; value: bigint | Uint8Array };

/** The graph of an ONNX ModelProto; throws an Error saying what is wrong with malformed bytes. */
export function readGraph(bytes: Uint8Array): GraphSummary {
  let graph: Uint8Array | undefined;
  const opsets: Record<string, number> = {};
  for (const field of fields(bytes)) {
    if (field.number === MODEL_GRAPH && field.value instanceof Uint8Array) graph = field.value;
    if (field.number === MODEL_OPSET_IMPORT && field.value instanceof Uint8Array) {
      let domain = '';
      let version = 0;
      for (const f of fields(field.value)) {
        if (f.number === OPSET_DOMAIN && f.value instanceof Uint8Array) domain = text(f.value);
        if (f.number === OPSET_VERSION && typeof f.value === 'bigint') version = Number(f.value);
      }
      opsets[domain === 'ai.onnx' ? '' : domain] = version;
    }
  }
  if (!graph) throw new Error('the model has no graph');
  const nodes: GraphNode[] = [];
  const outputs: string[] = [];
  readNodes(graph, nodes, 0, outputs);
  if (nodes.length === 0) throw new Error('the model\'s graph has no nodes');
  const initializers = new Map<string, number[]>();
  for (const field of fields(graph)) {
    if (field.number !== GRAPH_INITIALIZER || !(field.value instanceof Uint8Array)) continue;
    let name = '';
    const dims: number[] = [];
    for (const f of fields(field.value)) {
      if (f.number === TENSOR_NAME && f.value instanceof Uint8Array) name = text(f.value);
      if (f.number === TENSOR_DIMS && typeof f.value === 'bigint') dims.push(Number(f.value));
      if (f.number === TENSOR_DIMS && f.value instanceof Uint8Array) dims.push(...packedVarints(f.value));
    }
    initializers.set(name, dims);
  }
  return { nodes, outputs, opsets, initializers };
}

function readNodes(graph: Uint8Array, into: GraphNode[], depth: number, outputs?: string[]): void {
  if (depth > MAX_DEPTH) throw new Error(`subgraphs nested deeper than ${MAX_DEPTH}`);
  for (const field of fields(graph)) {
    if (!(field.value instanceof Uint8Array)) continue;
    if (field.number === GRAPH_OUTPUT && outputs) {
      for (const f of fields(field.value)) if (f.number === VALUE_INFO_NAME && f.value instanceof Uint8Array) outputs.push(text(f.value));
    }
    if (field.number !== GRAPH_NODE) continue;
    const node: GraphNode = { name: '', opType: '', domain: '', inputs: [], outputs: [] };
    for (const f of fields(field.value)) {
      if (!(f.value instanceof Uint8Array)) continue;
      if (f.number === NODE_OP_TYPE) node.opType = text(f.value);
      else if (f.number === NODE_DOMAIN) node.domain = text(f.value) === 'ai.onnx' ? '' : text(f.value);
      else if (f.number === NODE_OUTPUT) node.outputs.push(text(f.value));
      else if (f.number === NODE_INPUT) node.inputs.push(text(f.value));
      else if (f.number === NODE_NAME) node.name = text(f.value);
      else if (f.number === NODE_ATTRIBUTE) {
        for (const a of fields(f.value)) {
          if ((a.number === ATTRIBUTE_G || a.number === ATTRIBUTE_GRAPHS) && a.value instanceof Uint8Array) readNodes(a.value, into, depth + 1);
        }
      }
    }
    if (node.opType === '') throw new Error('a node has no op type');
    into.push(node);
  }
}

function packedVarints(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let value = 0n;
  let shift = 0n;
  for (const byte of bytes) {
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) {
      out.push(Number(value));
      value = 0n;
      shift = 0n;
    }
  }
  return out;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** The fields of one protobuf message, in order: varints as bigint, length-delimited as views; fixed skipped. */
function* fields(bytes: Uint8Array): Generator<Field> {
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= bytes.byteLength) throw new Error('truncated protobuf (varint)');
      const byte = bytes[at++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('malformed protobuf (varint too long)');
  };
  while (at < bytes.byteLength) {
    const key = varint();
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (number === 0) throw new Error('malformed protobuf (field 0)');
    if (wire === 0) yield { number, wire, value: varint() };
    else if (wire === 2) {
      const length = Number(varint());
      if (at + length > bytes.byteLength) throw new Error('truncated protobuf (field runs past the end)');
      yield { number, wire, value: bytes.subarray(at, at + length) };
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`malformed protobuf (wire type ${wire})`);
    if (at > bytes.byteLength) throw new Error('truncated protobuf');
  }
}
