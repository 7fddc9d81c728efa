import { describe, expect, it } from 'vitest'
import { paperArchitecture, randomLstmWeights } from '../../test/support/random'
import { weightShapes } from '../contract'
import { OptimizerConfigError } from './errors'
import { assertLstmWeights, lstmWeightsFromTensors, lstmWeightTensors } from './lstm-weights'

describe('LSTM weights', () => {
  it("name their tensors as the contract's weightShapes does, and come back from those names", () => {
    const weights = randomLstmWeights(paperArchitecture, 7)
    const tensors = lstmWeightTensors(weights)
    expect([...tensors.keys()]).toEqual([...weightShapes(paperArchitecture).keys()])
    expect(lstmWeightsFromTensors(paperArchitecture, (name) => tensors.get(name)!)).toEqual(weights)
  })

  it('are refused when the architecture itself is invalid, naming the field', () => {
    const weights = randomLstmWeights(paperArchitecture, 7)
    const bad = { ...weights, architecture: { ...paperArchitecture, p: -1 } }
    expect(() => assertLstmWeights(bad)).toThrow(OptimizerConfigError)
    expect(() => assertLstmWeights(bad)).toThrow(/p: /)
  })

  it('are refused with a cell too many', () => {
    const weights = randomLstmWeights(paperArchitecture, 7)
    const bad = { ...weights, cells: [...weights.cells, weights.cells[1]] }
    expect(() => assertLstmWeights(bad)).toThrow(/3 cells for 2 layers/)
  })
})
