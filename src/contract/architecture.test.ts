import { describe, expect, it } from 'vitest'
import { paperArchitecture as paper, quadraticArchitecture as quadratic } from '../../test/support/random'
import {
  architectureJson,
  architectureSchema,
  featureKinds,
  inputSize,
  lstmSpec,
  outputKinds,
  stateSize,
  weightShapes,
} from './architecture'

describe('architecture', () => {
  it('accepts the paper and quadratic architectures and computes sizes', () => {
    expect(architectureSchema.parse(paper)).toEqual(paper)
    expect(architectureSchema.parse(quadratic)).toEqual(quadratic)
    expect(stateSize(paper)).toBe(80)
    expect(inputSize(paper)).toBe(2)
    expect(inputSize(quadratic)).toBe(1)
  })

  it.each([
    ['p missing for log-sign', { ...paper, p: undefined }],
    ['p present for none', { ...quadratic, p: 10 }],
    ['p not positive', { ...paper, p: 0 }],
    ['zero layers', { ...paper, layers: 0 }],
    ['too many layers', { ...paper, layers: 9 }],
    ['hidden too large', { ...paper, hidden: 257 }],
    ['fractional hidden', { ...paper, hidden: 2.5 }],
    ['other kind', { ...paper, kind: 'gru' }],
    ['unknown preprocessing', { ...paper, preprocessing: 'sign' }],
    ['unknown key', { ...paper, clip: 5 }],
    ['missing outputScale', { ...paper, outputScale: undefined }],
    ['infinite outputScale', { ...paper, outputScale: Number.POSITIVE_INFINITY }],
  ])('refuses %s', (_, arch) => {
    expect(architectureSchema.safeParse(arch).success).toBe(false)
  })

  it('says which field is wrong when p does not fit the feature kind', () => {
    const missing = architectureSchema.safeParse({ ...paper, p: undefined })
    expect(missing.error?.issues[0]).toMatchObject({
      path: ['p'],
      message: 'p is required when preprocessing is log-sign',
    })
    const extra = architectureSchema.safeParse({ ...quadratic, p: 10 })
    expect(extra.error?.issues[0].message).toBe('p must be absent when preprocessing is none')
  })

  it('writes compact JSON with sorted keys', () => {
    expect(architectureJson(paper)).toBe(
      '{"hidden":20,"kind":"lstm-cw","layers":2,"outputScale":0.1,"p":10,"preprocessing":"log-sign"}',
    )
    expect(architectureJson(quadratic)).toBe(
      '{"hidden":3,"kind":"lstm-cw","layers":1,"outputScale":1,"preprocessing":"none"}',
    )
  })
})

describe('lstmSpec', () => {
  it('normalizes the wire form into kinds, and lays out the state: the LSTM, then each kind', () => {
    expect(lstmSpec(paper)).toEqual({
      layers: 2,
      hidden: 20,
      features: { kind: 'log-sign', p: 10 },
      output: { kind: 'linear', scale: 0.1 },
      inputSize: 2,
      stateSize: 80,
      state: {
        lstm: { offset: 0, size: 80 },
        features: { offset: 80, size: 0 },
        output: { offset: 80, size: 0 },
      },
    })
    expect(lstmSpec(quadratic)).toMatchObject({ features: { kind: 'none' }, inputSize: 1, stateSize: 6 })
  })

  it('has a descriptor for every kind the schema accepts', () => {
    expect(architectureSchema.shape.preprocessing.options).toEqual(Object.keys(featureKinds))
    expect(Object.keys(outputKinds)).toEqual(['linear'])
  })
})

describe('weightShapes', () => {
  it("lists the state_dict tensors, the first cell's input width from the feature kind", () => {
    expect([...weightShapes(paper)]).toEqual([
      ['cells.0.weight_ih', [80, 2]],
      ['cells.0.weight_hh', [80, 20]],
      ['cells.0.bias_ih', [80]],
      ['cells.0.bias_hh', [80]],
      ['cells.1.weight_ih', [80, 20]],
      ['cells.1.weight_hh', [80, 20]],
      ['cells.1.bias_ih', [80]],
      ['cells.1.bias_hh', [80]],
      ['head.weight', [1, 20]],
      ['head.bias', [1]],
    ])
    expect(weightShapes(quadratic).get('cells.0.weight_ih')).toEqual([12, 1])
  })
})
