import type { z } from 'zod'
import type { lstmArchitectureSchema } from './architecture'

/**
 * Architecture of a coordinatewise LSTM optimizer, as stored in a weight file's metadata (DESIGN §2–3):
 * `{ kind: 'lstm-cw', layers, hidden, preprocessing: 'log-sign' | 'none', p?, outputScale }`.
 * Inferred from `lstmArchitectureSchema`, which documents and bounds each field.
 */
export type LstmArchitecture = z.infer<typeof lstmArchitectureSchema>

/** One nn.LSTMCell's parameters, row-major, gate order (i, f, g, o). */
export interface LstmCellWeights {
  /** [4H, inputSize] */
  weightIh: Float32Array
  /** [4H, H] */
  weightHh: Float32Array
  /** [4H] */
  biasIh: Float32Array
  /** [4H] */
  biasHh: Float32Array
}

/** A frozen learned optimizer: architecture plus all tensors. */
export interface LstmWeights {
  architecture: LstmArchitecture
  cells: LstmCellWeights[]
  head: {
    /** [1, H] */
    weight: Float32Array
    /** [1] */
    bias: Float32Array
  }
}
