/** Public API of src/weights: the LSTM weight-file loader. */
export {
  architectureJson,
  inputSize,
  lstmArchitectureSchema,
  MAX_HIDDEN,
  MAX_LAYERS,
  stateSize,
  WEIGHTS_FORMAT,
} from './architecture'
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
export type { LstmArchitecture, LstmCellWeights, LstmWeights } from './types'
