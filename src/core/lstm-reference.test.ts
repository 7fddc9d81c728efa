import { describe, expect, it } from 'vitest'
import { lstmReferenceStep } from './lstm-reference'
import type { LstmWeights } from './lstm-weights'

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z))
const f32 = (...xs: number[]) => Float32Array.from(xs)

/** One hidden unit per cell: gate rows are (i, f, g, o), so every weight is written out by hand. */
function scalarCell(wi: number[], wh: number[], bi: number[], bh: number[]) {
  return { weightIh: f32(...wi), weightHh: f32(...wh), biasIh: f32(...bi), biasHh: f32(...bh) }
}

describe('lstmReferenceStep', () => {
  it('computes one nn.LSTMCell step by hand (L=1, H=1, log-sign)', () => {
    const p = 10
    // log-sign gives two inputs, so weight_ih is [4, 2].
    const cell = scalarCell(
      [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8],
      [0.9, -1.0, 1.1, 1.2],
      [0.01, 0.02, 0.03, 0.04],
      [-0.05, 0.06, 0.07, -0.08],
    )
    const weights: LstmWeights = {
      architecture: { kind: 'lstm-cw', layers: 1, hidden: 1, preprocessing: 'log-sign', p, outputScale: 0.5 },
      cells: [cell],
      head: { weight: f32(1.5), bias: f32(-0.25) },
    }
    const g = Math.fround(0.01)
    const [h0, c0] = [Math.fround(0.3), Math.fround(-0.7)]
    const x = [Math.log(g) / p, 1]
    const w = Array.from(cell.weightIh)
    const u = Array.from(cell.weightHh)
    const b = (r: number) => cell.biasIh[r] + cell.biasHh[r]
    const z = (r: number) => w[2 * r] * x[0] + w[2 * r + 1] * x[1] + u[r] * h0 + b(r)
    const c1 = sigmoid(z(1)) * c0 + sigmoid(z(0)) * Math.tanh(z(2))
    const h1 = sigmoid(z(3)) * Math.tanh(c1)
    const update = 0.5 * (weights.head.weight[0] * h1 + weights.head.bias[0])

    const out = lstmReferenceStep(weights, [g], [h0, c0])
    expect(out.state[0]).toBeCloseTo(h1, 14)
    expect(out.state[1]).toBeCloseTo(c1, 14)
    expect(out.updates[0]).toBeCloseTo(update, 14)
  })

  it('feeds each layer the new h of the layer below and keeps state as [h1, c1, h2, c2] (L=2, H=1)', () => {
    const a = scalarCell([0.3, -0.2, 0.5, 0.1], [0.2, 0.1, -0.4, 0.3], [0.1, 0, 0, 0], [0, 0.2, 0, 0])
    const b = scalarCell([-0.6, 0.4, 0.9, -0.1], [0.5, -0.3, 0.2, 0.7], [0, 0, 0.1, 0], [0, 0, 0, -0.2])
    const weights: LstmWeights = {
      architecture: { kind: 'lstm-cw', layers: 2, hidden: 1, preprocessing: 'none', outputScale: 2 },
      cells: [a, b],
      head: { weight: f32(0.75), bias: f32(0.125) },
    }
    const state = f32(0.1, 0.2, -0.3, 0.4)
    const step = (cell: ReturnType<typeof scalarCell>, x: number, h: number, c: number) => {
      const z = (r: number) => cell.weightIh[r] * x + cell.weightHh[r] * h + cell.biasIh[r] + cell.biasHh[r]
      const cNew = sigmoid(z(1)) * c + sigmoid(z(0)) * Math.tanh(z(2))
      return [sigmoid(z(3)) * Math.tanh(cNew), cNew]
    }
    const g = Math.fround(-0.8)
    const [h1, c1] = step(a, g, state[0], state[1])
    const [h2, c2] = step(b, h1, state[2], state[3])
    const out = lstmReferenceStep(weights, [g], state)
    const want = [h1, c1, h2, c2]
    out.state.forEach((v, i) => {
      expect(v).toBeCloseTo(want[i], 14)
    })
    expect(out.updates[0]).toBeCloseTo(2 * (0.75 * h2 + 0.125), 14)
  })

  it('treats coordinates independently', () => {
    const cell = scalarCell([0.3, -0.2, 0.5, 0.1], [0.2, 0.1, -0.4, 0.3], [0.1, 0, 0, 0], [0, 0.2, 0, 0])
    const weights: LstmWeights = {
      architecture: { kind: 'lstm-cw', layers: 1, hidden: 1, preprocessing: 'none', outputScale: 1 },
      cells: [cell],
      head: { weight: f32(1), bias: f32(0) },
    }
    const both = lstmReferenceStep(weights, [0.5, -2], [0.1, 0.2, 0.3, 0.4])
    const first = lstmReferenceStep(weights, [0.5], [0.1, 0.2])
    const second = lstmReferenceStep(weights, [-2], [0.3, 0.4])
    expect(Array.from(both.updates)).toEqual([first.updates[0], second.updates[0]])
    expect(Array.from(both.state)).toEqual([...first.state, ...second.state])
  })
})
