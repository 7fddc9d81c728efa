/**
 * The optimizer core (DESIGN §2): the coordinatewise LSTM on tfjs and the hand-designed baselines
 * behind one Optimizer interface. Pure: no I/O, clock or randomness, and it never picks a backend.
 *
 * This file is the core's surface for the server, the runtimes and the weight loader. Every other
 * export of src/core is internal (the float64 oracle and the plain-TypeScript LSTM exist for tests
 * and the kernel benchmark): import those from their own modules, in tests and benches only.
 */
export {
  adam,
  type Baseline,
  type BaselineName,
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
export { fusedLstmOptimizer } from './fused/lstm-fused'
export { lstmOptimizer } from './lstm'
export type { LstmCellWeights, LstmWeights } from './lstm-weights'
export type { CallPool, Optimizer, StepResult } from './optimizer'
export { defineOptimizer, firstNonFinite } from './validate'
