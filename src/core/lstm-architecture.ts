import type { LstmArchitecture, LstmWeights } from '../weights/types'
import { OptimizerConfigError } from './errors'

/** Inputs per coordinate to the first cell: 2 for `log-sign`, 1 for `none`. */
export function featureCount(architecture: LstmArchitecture): number {
  return architecture.preprocessing === 'log-sign' ? 2 : 1
}

/** Floats of state per coordinate: [h_1, c_1, …, h_L, c_L], each H floats (DESIGN §2). */
export function lstmStateSize(architecture: LstmArchitecture): number {
  return 2 * architecture.layers * architecture.hidden
}

/**
 * Throws OptimizerConfigError unless every tensor has the length the architecture implies.
 * The weight loader checks names and shapes too; this guards weights built any other way.
 */
export function assertLstmWeights(weights: LstmWeights): void {
  const a = weights.architecture
  const fail = (what: string) => {
    throw new OptimizerConfigError(`LSTM weights do not match their architecture: ${what}`)
  }
  if (a.kind !== 'lstm-cw') fail(`kind is ${String(a.kind)}, expected lstm-cw`)
  if (!Number.isSafeInteger(a.layers) || a.layers < 1)
    fail(`layers must be a positive integer, got ${a.layers}`)
  if (!Number.isSafeInteger(a.hidden) || a.hidden < 1)
    fail(`hidden must be a positive integer, got ${a.hidden}`)
  if (a.preprocessing === 'log-sign') {
    if (a.p === undefined || !Number.isFinite(a.p) || a.p <= 0)
      fail(`log-sign needs a finite p > 0, got ${a.p}`)
  } else if (a.preprocessing !== 'none') {
    fail(`unknown preprocessing ${String(a.preprocessing)}`)
  }
  if (!Number.isFinite(a.outputScale)) fail(`outputScale must be finite, got ${a.outputScale}`)
  if (weights.cells.length !== a.layers) fail(`${weights.cells.length} cells for ${a.layers} layers`)
  const h = a.hidden
  const expectLength = (name: string, array: Float32Array, length: number) => {
    if (array.length !== length) fail(`${name} has ${array.length} floats, expected ${length}`)
  }
  weights.cells.forEach((cell, k) => {
    const inputSize = k === 0 ? featureCount(a) : h
    expectLength(`cells.${k}.weight_ih`, cell.weightIh, 4 * h * inputSize)
    expectLength(`cells.${k}.weight_hh`, cell.weightHh, 4 * h * h)
    expectLength(`cells.${k}.bias_ih`, cell.biasIh, 4 * h)
    expectLength(`cells.${k}.bias_hh`, cell.biasHh, 4 * h)
  })
  expectLength('head.weight', weights.head.weight, h)
  expectLength('head.bias', weights.head.bias, 1)
}
