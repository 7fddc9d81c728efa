/**
 * Float data in one of the codec's dtypes: F32 values, or F16/BF16 bit patterns. An optimizer
 * state travels this way (DESIGN §5): [N, S] row-major, one row per coordinate, so a range of
 * coordinates is a range of rows. The server and the SDK both slice, widen and narrow states here.
 */
import type { Dtype, Tensor } from './codec'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './float16'

/** Values in a dtype: F32 as a Float32Array, F16 and BF16 as raw 16-bit patterns. */
export type FloatData = { dtype: 'F32'; data: Float32Array } | { dtype: 'F16' | 'BF16'; data: Uint16Array }

/** The values as float32: F32 data as is (no copy), F16/BF16 widened exactly. */
export function toFloat32(values: FloatData): Float32Array {
  if (values.dtype === 'F32') return values.data
  return values.dtype === 'F16' ? f16ToF32(values.data) : bf16ToF32(values.data)
}

/**
 * float32 values in `dtype`: F32 keeps `values` (no copy), F16/BF16 round to nearest even. A
 * finite value beyond F16's range saturates at ±65504 instead of becoming ±Inf: a state must stay
 * finite to be sent back (the server refuses non-finite states), and the `moments` feature slots
 * hold gradient-sized values (docs/optimizer-math.md §3), which can exceed it. BF16 has float32's
 * range.
 */
export function fromFloat32(dtype: Dtype, values: Float32Array): FloatData {
  if (dtype === 'F32') return { dtype, data: values }
  if (dtype === 'BF16') return { dtype, data: f32ToBf16(values) }
  const data = f32ToF16(values)
  for (let i = 0; i < data.length; i++) {
    // ±Inf from a finite value (only NaN or ±Inf inputs, never in a state, give other patterns).
    if ((data[i] & 0x7fff) === 0x7c00 && Number.isFinite(values[i])) data[i] = (data[i] & 0x8000) | 0x7bff
  }
  return { dtype, data }
}

/**
 * A tensor of `dtype` from float32 values (see fromFloat32).
 *
 * @example encode({ state: tensorOf('BF16', [n, s], state) })
 */
export function tensorOf(dtype: Dtype, shape: number[], values: Float32Array): Tensor {
  return { ...fromFloat32(dtype, values), shape }
}

/** `count` zeros in `dtype` (zero is all-zero bits in every dtype). */
export function zerosOf(dtype: Dtype, count: number): FloatData {
  return dtype === 'F32' ? { dtype, data: new Float32Array(count) } : { dtype, data: new Uint16Array(count) }
}

/** Rows [begin, end) of row-major data with `rowSize` elements per row: a view, no copy. */
export function sliceRows(values: FloatData, rowSize: number, begin: number, end: number): FloatData {
  const a = begin * rowSize
  const b = end * rowSize
  return values.dtype === 'F32'
    ? { dtype: 'F32', data: values.data.subarray(a, b) }
    : { dtype: values.dtype, data: values.data.subarray(a, b) }
}

/** The bytes of the data, in place (a view of the same memory). */
export function bytesOf(values: FloatData | Float32Array | Uint16Array): Uint8Array {
  const data = ArrayBuffer.isView(values) ? values : values.data
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}
