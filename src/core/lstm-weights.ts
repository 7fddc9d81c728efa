/**
 * The weights the coordinatewise LSTM consumes (DESIGN §2–3): an architecture plus its tensors,
 * named as PyTorch's state_dict names them. Sizes come from the contract's architecture.
 */
import { type Architecture, architectureFormSchema, lstmSpec, weightShapes } from '../contract'
import { OptimizerConfigError } from './errors'

/** One nn.LSTMCell's parameters, row-major, gate order (i, f, g, o). */
export interface LstmCellWeights {
  /** [4H, inputs]: F for the first cell, H above it. */
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
  architecture: Architecture
  /** The input layer's nn.Linear, present exactly when the architecture has an `inputLayer`. */
  input?: {
    /** [E, F] */
    weight: Float32Array
    /** [E] */
    bias: Float32Array
  }
  cells: LstmCellWeights[]
  head: {
    /** [1, H] */
    weight: Float32Array
    /** [1] */
    bias: Float32Array
  }
}

/** The tensors of LSTM weights by their state_dict names, in state_dict order (see weightShapes). */
export function lstmWeightTensors(weights: LstmWeights): Map<string, Float32Array> {
  const tensors = new Map<string, Float32Array>()
  if (weights.input !== undefined) {
    tensors.set('input.weight', weights.input.weight)
    tensors.set('input.bias', weights.input.bias)
  }
  weights.cells.forEach((cell, k) => {
    tensors.set(`cells.${k}.weight_ih`, cell.weightIh)
    tensors.set(`cells.${k}.weight_hh`, cell.weightHh)
    tensors.set(`cells.${k}.bias_ih`, cell.biasIh)
    tensors.set(`cells.${k}.bias_hh`, cell.biasHh)
  })
  tensors.set('head.weight', weights.head.weight)
  tensors.set('head.bias', weights.head.bias)
  return tensors
}

/** LSTM weights from their tensors by state_dict name (the inverse of lstmWeightTensors). */
export function lstmWeightsFromTensors(
  architecture: Architecture,
  tensor: (name: string) => Float32Array,
): LstmWeights {
  const cells = Array.from({ length: architecture.layers }, (_, k) => ({
    weightIh: tensor(`cells.${k}.weight_ih`),
    weightHh: tensor(`cells.${k}.weight_hh`),
    biasIh: tensor(`cells.${k}.bias_ih`),
    biasHh: tensor(`cells.${k}.bias_hh`),
  }))
  const head = { weight: tensor('head.weight'), bias: tensor('head.bias') }
  if (lstmSpec(architecture).inputLayer === null) return { architecture, cells, head }
  return { architecture, input: { weight: tensor('input.weight'), bias: tensor('input.bias') }, cells, head }
}

/**
 * Throws OptimizerConfigError unless the architecture is valid and every tensor has the length it
 * implies. The weight loader checks names and shapes too; this guards weights built any other way.
 */
export function assertLstmWeights(weights: LstmWeights): void {
  const fail = (what: string): never => {
    throw new OptimizerConfigError(`LSTM weights do not match their architecture: ${what}`)
  }
  const a = weights.architecture
  const parsed = architectureFormSchema(a).safeParse(a)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    fail(`${issue.path.join('.') || 'architecture'}: ${issue.message}`)
  }
  if (weights.cells.length !== a.layers) fail(`${weights.cells.length} cells for ${a.layers} layers`)
  const tensors = lstmWeightTensors(weights)
  const shapes = weightShapes(a)
  for (const [name, shape] of shapes) {
    const length = shape.reduce((x, y) => x * y, 1)
    const array = tensors.get(name)
    if (array?.length !== length) fail(`${name} has ${array?.length} floats, expected ${length}`)
  }
  if (tensors.has('input.weight') && !shapes.has('input.weight'))
    fail('an input layer the architecture lacks')
}
