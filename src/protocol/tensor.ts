// Tensors on the wire: dtype, shape and raw little-endian bytes; never JSON number arrays.
import * as v from 'valibot';

/** Largest dimension a tensor may declare; bounds allocation before any buffer is made. */
export const MAX_TENSOR_DIM = 65_536;
/** Largest tensor payload accepted in one message. */
export const MAX_TENSOR_BYTES = 64 * 1024 * 1024;

/** Any byte array, whatever buffer is behind it (msgpack, WebRTC and WebCrypto each hand out their own). */
export const Bytes = v.custom<Uint8Array>((x) => x instanceof Uint8Array, 'expected binary bytes');

const Dim = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_TENSOR_DIM));

/**
 * f32; f16 as IEEE halves (the operands of f16 work); u8 for compact inputs such as pixels, which the kind turns into
 * f32 on the miner (e.g. an onnx input's per-channel normalisation). Results are always f32.
 */
export const Dtype = v.picklist(['f32', 'f16', 'u8']);
export type Dtype = v.InferOutput<typeof Dtype>;
export const BYTES_PER_ELEMENT: Record<Dtype, number> = { f32: 4, f16: 2, u8: 1 };

export const TensorShape = v.pipe(v.array(Dim), v.minLength(1), v.maxLength(4));

export const Tensor = v.pipe(
  v.object({
    dtype: Dtype,
    shape: TensorShape,
    data: v.pipe(Bytes, v.maxLength(MAX_TENSOR_BYTES)),
  }),
  v.check(
    (t) => t.data.byteLength === elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype],
    'tensor data length does not match its shape',
  ),
);
export type Tensor = v.InferOutput<typeof Tensor>;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Wraps f32 values as a wire tensor without copying. Assumes a little-endian host, as every WebGPU platform is. */
export function f32Tensor(shape: number[], values: Float32Array): Tensor {
  if (values.length !== elementCount(shape)) {
    throw new RangeError(`f32Tensor: ${values.length} values for shape ${shape.join('x')}`);
  }
  return { dtype: 'f32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Wraps f16 values, as their IEEE half bits, as a wire tensor without copying. */
export function f16Tensor(shape: number[], halves: Uint16Array): Tensor {
  if (halves.length !== elementCount(shape)) {
    throw new RangeError(`f16Tensor: ${halves.length} values for shape ${shape.join('x')}`);
  }
  return { dtype: 'f16', shape, data: new Uint8Array(halves.buffer, halves.byteOffset, halves.byteLength) };
}

/** Wraps u8 values as a wire tensor without copying. */
export function u8Tensor(shape: number[], values: Uint8Array): Tensor {
  if (values.length !== elementCount(shape)) {
    throw new RangeError(`u8Tensor: ${values.length} values for shape ${shape.join('x')}`);
  }
  return { dtype: 'u8', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/**
 * Views an f32 tensor's bytes as f32, copying only when the bytes are not 4-byte aligned (as msgpack may leave
 * them). Throws on another dtype: check `dtype` at the boundary first.
 */
export function f32Values(tensor: Tensor): Float32Array {
  const { data } = tensor;
  if (tensor.dtype !== 'f32') throw new TypeError(`f32Values: the tensor is ${tensor.dtype}`);
  if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  return new Float32Array(Uint8Array.from(data).buffer);
}

/** Views an f16 tensor's bytes as IEEE half bits, copying only when they are not 2-byte aligned. Throws on f32. */
export function f16Halves(tensor: Tensor): Uint16Array {
  const { data } = tensor;
  if (tensor.dtype !== 'f16') throw new TypeError(`f16Halves: the tensor is ${tensor.dtype}`);
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  return new Uint16Array(Uint8Array.from(data).buffer);
}

/** True when every value is finite: NaN and Inf are never valid operands or results. */
export function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}
