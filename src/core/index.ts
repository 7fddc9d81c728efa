export type { BaselineName } from './baselines'
export {
  adam,
  type Baseline,
  baselineDefaults,
  baselineHyperparameters,
  baselineNames,
  baselineOptimizer,
  baselines,
  baselineWith,
  isBaseline,
  momentum,
  nesterov,
  rmsprop,
  sgd,
} from './baselines'
export { NonFiniteGradientError, OptimizerConfigError, OptimizerInputError, StateLengthError } from './errors'
export { lstmOptimizer } from './lstm'
export { lstmPlainOptimizer } from './lstm-plain'
export type { LstmReferenceResult } from './lstm-reference'
export { lstmReferenceOptimizer, lstmReferenceStep } from './lstm-reference'
export {
  assertLstmWeights,
  type LstmCellWeights,
  type LstmWeights,
  lstmWeightsFromTensors,
  lstmWeightTensors,
} from './lstm-weights'
export type { Optimizer, StepResult } from './optimizer'
export { preprocessInto } from './preprocess'
export { assertFiniteGradients, assertStateLength, defineOptimizer, firstNonFinite } from './validate'
