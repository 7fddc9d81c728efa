/** Architecture of a coordinatewise LSTM optimizer, as stored in a weight file's metadata (DESIGN §2–3). */
export interface LstmArchitecture {
  kind: 'lstm-cw'
  /** Number of stacked LSTM cells (L). */
  layers: number
  /** Hidden size of every cell (H). */
  hidden: number
  /** Gradient preprocessing: `log-sign` (2 inputs, uses p) or `none` (1 input). */
  preprocessing: 'log-sign' | 'none'
  /** Preprocessing constant p > 0; present iff preprocessing is `log-sign`. */
  p?: number
  /** update = outputScale · (W_out·h_L + b_out). */
  outputScale: number
}

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
