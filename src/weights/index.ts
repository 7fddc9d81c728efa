/** Public API of src/weights: the safetensors codec, 16-bit float conversion and the weight-file loader. */
export {
  architectureJson,
  inputSize,
  lstmArchitectureSchema,
  MAX_HIDDEN,
  MAX_LAYERS,
  stateSize,
  WEIGHTS_FORMAT,
} from './architecture'
export { bf16ToF32, f16ToF32, f32BitsToF16, f32ToBf16, f32ToF16, tensorOf, toFloat32 } from './float16'
export {
  decodeLstmWeights,
  digestOf,
  encodeLstmWeights,
  expectedTensors,
  parseArchitecture,
  readWeightFile,
  WeightsError,
  type WeightsErrorCode,
} from './load'
export {
  DEFAULT_MAX_HEADER_BYTES,
  type DecodeLimits,
  type Dtype,
  decode,
  encode,
  ITEMSIZE,
  SafetensorsError,
  type SafetensorsErrorCode,
  type SafetensorsFile,
  type Tensor,
} from './safetensors'
export type { LstmArchitecture, LstmCellWeights, LstmWeights } from './types'
