/** Base class of every error the optimizers raise for bad input; the server maps these to 400s. */
export class OptimizerInputError extends Error {
  override name = 'OptimizerInputError'
}

/** A gradient was NaN or ±Infinity; `index` is the first offending coordinate. */
export class NonFiniteGradientError extends OptimizerInputError {
  override name = 'NonFiniteGradientError'
  constructor(
    readonly index: number,
    readonly value: number,
  ) {
    super(`gradient at coordinate ${index} is ${value}; every gradient must be a finite number`)
  }
}

/** A state's length is not numParams · stateSize. */
export class StateLengthError extends OptimizerInputError {
  override name = 'StateLengthError'
  constructor(
    readonly expected: number,
    readonly actual: number,
    detail: string,
  ) {
    super(`state has ${actual} floats but ${detail} needs ${expected}; send the state the last step returned`)
  }
}

/** An optimizer's hyper-parameters or weights are unusable (unknown name, out of range, wrong shape). */
export class OptimizerConfigError extends Error {
  override name = 'OptimizerConfigError'
}
