/**
 * The LSTM weight-file loader (DESIGN §3): decode and encode `model.safetensors` files, and their
 * digests. The architecture and its sizes are the contract's; the weights type is the core's.
 * This file is the loader's public surface; anything else in src/weights is internal.
 */
export {
  decodeLstmWeights,
  digestOf,
  encodeLstmWeights,
  parseArchitecture,
  readWeightFile,
  WeightsError,
  type WeightsErrorCode,
} from './load'
