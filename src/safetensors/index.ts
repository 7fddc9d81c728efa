/**
 * The safetensors codec (DESIGN §3, §5): framing, one dtype table (F32, F16, BF16), 16-bit float
 * conversion and float data helpers. Web APIs and zod only; shared by the weight loader, the server
 * and the SDK.
 */
export {
  DEFAULT_MAX_HEADER_BYTES,
  type DecodeLimits,
  type Dtype,
  decode,
  encode,
  encodeHeader,
  type HeaderEntry,
  ITEMSIZE,
  SafetensorsError,
  type SafetensorsErrorCode,
  type SafetensorsFile,
  type Tensor,
} from './codec'
export { bytesOf, type FloatData, fromFloat32, sliceRows, tensorOf, toFloat32, zerosOf } from './float-data'
export { bf16ToF32, f16ToF32, f32BitsToF16, f32ToBf16, f32ToF16 } from './float16'
export { float32Decimal, float32JsonArray, float32JsonElements } from './float32-decimal'
