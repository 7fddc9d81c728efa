import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  extendedArchitecture as extended,
  paperArchitecture as paper,
  quadraticArchitecture as quadratic,
} from '../../test/support/random'
import { decode } from '../safetensors'
import {
  architectureFormSchema,
  architectureJson,
  architectureSchema,
  featureKinds,
  inputSize,
  lstmSpec,
  outputKinds,
  paperArchitectureSchema,
  pythonFloatRepr,
  stateSize,
  weightShapes,
} from './architecture'

/** `__metadata__.architecture` of a weight file in the repository (as train/ wrote it). */
function architectureTextOf(file: string): string {
  const bytes = readFileSync(path.join(import.meta.dirname, '../..', file))
  return decode(new Uint8Array(bytes)).metadata?.architecture ?? ''
}

const extendedFixtures = [
  'moments-elu-tanh',
  'moments-linear',
  'moments-logrms-elu-tanhrms',
  'moments-logrms-elu-tanhrms-decay',
  'moments-logrms-elu-tanhrms-decay-gain',
  'moments-tanhrms-gain',
].map((name) => `test/fixtures/extended/${name}/model.safetensors`)

/** l2o-mlp@1.6.0's gain (docs/optimizer-math.md §1). */
const latch = { kind: 'latch', after: 10, center: 0.02, strength: 4, cap: 0.4 }

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

  it.each([
    ['a mix of both forms', { ...extended, outputScale: 0.1 }],
    ['no output', { ...extended, output: undefined }],
    ['no features', { ...extended, features: undefined }],
    ['unknown feature kind', { ...extended, features: { kind: 'log-sign', p: 10 } }],
    ['empty beta1', { ...extended, features: { ...extended.features, beta1: [] } }],
    ['nine time scales', { ...extended, features: { ...extended.features, beta1: Array(9).fill(0.5) } }],
    ['beta1 of 1', { ...extended, features: { ...extended.features, beta1: [0.5, 1] } }],
    ['negative beta1', { ...extended, features: { ...extended.features, beta1: [-0.1] } }],
    ['beta2 of 1', { ...extended, features: { ...extended.features, beta2: 1 } }],
    ['NaN beta2', { ...extended, features: { ...extended.features, beta2: Number.NaN } }],
    ['eps of 0', { ...extended, features: { ...extended.features, eps: 0 } }],
    ['infinite eps', { ...extended, features: { ...extended.features, eps: Number.POSITIVE_INFINITY } }],
    ['an unknown key in features', { ...extended, features: { ...extended.features, p: 10 } }],
    ['input layer of 0 units', { ...extended, inputLayer: { size: 0, activation: 'elu' } }],
    ['input layer too wide', { ...extended, inputLayer: { size: 257, activation: 'elu' } }],
    ['other activation', { ...extended, inputLayer: { size: 8, activation: 'relu' } }],
    ['unknown output kind', { ...extended, output: { kind: 'sigmoid', scale: 0.1 } }],
    ['infinite scale', { ...extended, output: { kind: 'tanh', scale: Number.NEGATIVE_INFINITY } }],
    ['a scale beyond float32', { ...extended, output: { kind: 'linear', scale: 3.5e38 } }],
    ['an unknown key in output', { ...extended, output: { kind: 'tanh', scale: 0.1, clip: 1 } }],
    ['tanh-rms without a power', { ...extended, output: { kind: 'tanh-rms', scale: 1 } }],
    ['tanh-rms with power 0', { ...extended, output: { kind: 'tanh-rms', scale: 1, power: 0 } }],
    ['tanh-rms with power above 1', { ...extended, output: { kind: 'tanh-rms', scale: 1, power: 1.5 } }],
    // |scale| · 3.4e38^power must stay a float32: 2 · 3.4e38 at power 1 does not
    ['tanh-rms that can overflow', { ...extended, output: { kind: 'tanh-rms', scale: 2, power: 1 } }],
    [
      'tanh with a decay',
      { ...extended, output: { kind: 'tanh', scale: 1, decay: { after: 3, power: 0.5 } } },
    ],
  ])('refuses an extended architecture with %s', (_, arch) => {
    expect(architectureSchema.safeParse(arch).success).toBe(false)
    expect(architectureFormSchema(arch).safeParse(arch).success).toBe(false)
  })

  it('accepts a tanh-rms output whose largest step is a float32, and lays out no slots for it', () => {
    const rms = { ...extended, output: { kind: 'tanh-rms', scale: 1, power: 0.3 } }
    expect(architectureSchema.safeParse(rms).success).toBe(true)
    expect(
      architectureSchema.safeParse({ ...rms, output: { ...rms.output, scale: 1, power: 1 } }).success,
    ).toBe(true)
    expect(lstmSpec(architectureSchema.parse(rms)).stateSize).toBe(lstmSpec(extended).stateSize)
  })

  it.each([
    { after: 0, power: 0.5 },
    { after: 2.5, power: 0.5 },
    { after: 65536, power: 0.5 },
    { after: 3, power: 0 },
    { after: 3, power: 1.5 },
    { after: 3 },
    { after: 3, power: 0.5, start: 1 },
  ])('refuses a tanh-rms decay of %o', (decay) => {
    const arch = { ...extended, output: { kind: 'tanh-rms', scale: 1, power: 0.3, decay } }
    expect(architectureSchema.safeParse(arch).success).toBe(false)
    expect(architectureFormSchema(arch).safeParse(arch).success).toBe(false)
  })

  it.each([
    ['another kind', { ...latch, kind: 'lag' }],
    ['no kind', { ...latch, kind: undefined }],
    ['after 1', { ...latch, after: 1 }],
    ['after 2.5', { ...latch, after: 2.5 }],
    ['after 70000', { ...latch, after: 70_000 }],
    ['after 65536', { ...latch, after: 65_536 }],
    ['a negative strength', { ...latch, strength: -0.5 }],
    ['an infinite strength', { ...latch, strength: Number.POSITIVE_INFINITY }],
    ['a NaN center', { ...latch, center: Number.NaN }],
    ['an infinite center', { ...latch, center: Number.NEGATIVE_INFINITY }],
    ['cap 0', { ...latch, cap: 0 }],
    ['a negative cap', { ...latch, cap: -1 }],
    ['cap 21', { ...latch, cap: 21 }],
    ['no cap', { ...latch, cap: undefined }],
    ['an unknown key', { ...latch, shard: 4096 }],
  ])('refuses a tanh-rms gain with %s', (_, gain) => {
    const arch = { ...extended, output: { kind: 'tanh-rms', scale: 1, power: 0.3, gain } }
    expect(architectureSchema.safeParse(arch).success).toBe(false)
    expect(architectureFormSchema(arch).safeParse(arch).success).toBe(false)
  })

  it('accepts a gain at the edges of its ranges, with or without a decay, and only on tanh-rms', () => {
    const rms = (gain: object, extra: object = {}) => ({
      ...extended,
      output: { kind: 'tanh-rms', scale: 1, power: 0.3, gain, ...extra },
    })
    for (const gain of [
      latch,
      { ...latch, after: 2 },
      { ...latch, after: 65_535 },
      { ...latch, strength: 0, center: -1e300 },
      { ...latch, cap: 20 },
      { ...latch, cap: 1e-300 },
    ]) {
      expect(architectureSchema.safeParse(rms(gain)).success, JSON.stringify(gain)).toBe(true)
    }
    expect(architectureSchema.safeParse(rms(latch, { decay: { after: 200, power: 0.5 } })).success).toBe(true)
    const tanh = { ...extended, output: { kind: 'tanh', scale: 1, gain: latch } }
    expect(architectureSchema.safeParse(tanh).success).toBe(false)
  })

  it('bounds |scale| · e^cap · 3.4e38^power by 3.4e38, as train/ does', () => {
    const rms = (scale: number, power: number, cap: number) => ({
      ...extended,
      output: { kind: 'tanh-rms', scale, power, gain: { ...latch, cap } },
    })
    // power 1: |scale| · e^cap ≤ 1 (e^0.4 ≈ 1.4918); the same records without the gain are accepted
    expect(architectureSchema.safeParse(rms(0.67, 1, 0.4)).success).toBe(true)
    expect(architectureSchema.safeParse(rms(0.68, 1, 0.4)).success).toBe(false)
    expect(architectureSchema.safeParse(rms(-0.68, 1, 0.4)).success).toBe(false)
    expect(
      architectureSchema.safeParse({ ...extended, output: { kind: 'tanh-rms', scale: -0.68, power: 1 } })
        .success,
    ).toBe(true)
    // power 0.5: |scale| · e^cap ≤ 3.4e38^0.5 ≈ 1.8e19; e^20 ≈ 4.9e8
    expect(architectureSchema.safeParse(rms(1e10, 0.5, 20)).success).toBe(true)
    expect(architectureSchema.safeParse(rms(1e11, 0.5, 20)).success).toBe(false)
  })

  it("lays out tanh-rms's gain: the step count, then [p, a], with or without a decay", () => {
    const gained = (decay?: object) =>
      lstmSpec(
        architectureSchema.parse({
          ...extended,
          output: { kind: 'tanh-rms', scale: 1, power: 0.3, gain: latch, ...(decay ? { decay } : {}) },
        }),
      )
    const features = lstmSpec(extended).state.features
    for (const spec of [gained(), gained({ after: 200, power: 0.5 })]) {
      expect(spec.stateSize).toBe(lstmSpec(extended).stateSize + 4)
      expect(spec.state.output).toEqual({ offset: features.offset + features.size, size: 4 })
    }
  })

  it('writes a gain as train/ does: after an int, center, strength and cap Python floats', () => {
    const gained = architectureSchema.parse({
      ...extended,
      output: { kind: 'tanh-rms', scale: 1.5, power: 0.4, decay: { after: 200, power: 0.5 }, gain: latch },
    })
    // json.dumps(sort_keys=True, separators=(',', ':')) of train/optimizer.py's record
    expect(architectureJson(gained)).toBe(
      '{"features":{"beta1":[0.5,0.9,0.99],"beta2":0.99,"eps":1e-08,"kind":"moments"},"hidden":8,' +
        '"inputLayer":{"activation":"elu","size":8},"kind":"lstm-cw","layers":2,' +
        '"output":{"decay":{"after":200,"power":0.5},' +
        '"gain":{"after":10,"cap":0.4,"center":0.02,"kind":"latch","strength":4.0},' +
        '"kind":"tanh-rms","power":0.4,"scale":1.5}}',
    )
  })

  it("lays out tanh-rms's decay as two slots after the features' and writes it as train/ does", () => {
    const decayed = {
      ...extended,
      output: { kind: 'tanh-rms', scale: 1, power: 0.3, decay: { after: 200, power: 0.5 } },
    }
    const parsed = architectureSchema.parse(decayed)
    const spec = lstmSpec(parsed)
    expect(spec.stateSize).toBe(lstmSpec(extended).stateSize + 2)
    expect(spec.state.output).toEqual({
      offset: spec.state.features.offset + spec.state.features.size,
      size: 2,
    })
    expect(architectureJson(parsed)).toMatch(
      /"output":\{"decay":\{"after":200,"power":0\.5\},"kind":"tanh-rms","power":0\.3,"scale":1\.0\}/,
    )
  })

  it('accepts the extended form without an input layer, with a linear output', () => {
    const linear = { ...extended, inputLayer: undefined, output: { kind: 'linear', scale: -2 } }
    expect(architectureSchema.safeParse(linear).success).toBe(true)
  })

  it('names the field at fault in either form, and the keys of a mix', () => {
    const issues = (raw: unknown) => architectureFormSchema(raw).safeParse(raw).error?.issues ?? []
    const eps = issues({ ...extended, features: { ...extended.features, eps: -1 } })
    expect(eps[0].path).toEqual(['features', 'eps'])
    expect(issues({ ...paper, layers: 100 })[0].path).toEqual(['layers'])
    expect(issues({ ...extended, preprocessing: 'none' })[0].message).toMatch(/preprocessing/)
    const mixed = issues({ ...paper, output: { kind: 'tanh', scale: 1 } }).map((i) => i.message)
    expect(mixed.join('; ')).toMatch(/outputScale/)
  })

  it("reads the fixture files' architectures and writes them back as train/ wrote them", () => {
    for (const file of extendedFixtures) {
      const text = architectureTextOf(file)
      const parsed = architectureSchema.parse(JSON.parse(text))
      expect(architectureJson(parsed), file).toBe(text)
    }
  })

  it("keeps the paper's form as TypeScript has always written it", () => {
    // The shipped files were written by train/ ("p":10.0); they parse to the same record as ever.
    const shipped = JSON.parse(architectureTextOf('weights/l2o-mnist/1.1.0/model.safetensors'))
    expect(architectureSchema.parse(shipped)).toEqual(paper)
    expect(architectureJson(paper)).toBe(architectureTextOf('test/fixtures/workers-weights.safetensors'))
  })

  it('writes real numbers as Python does', () => {
    const cases: [number, string][] = [
      [0.1, '0.1'],
      [1e-8, '1e-08'],
      [1, '1.0'],
      [0, '0.0'],
      [-0, '-0.0'],
      [0.0001, '0.0001'],
      [1e-5, '1e-05'],
      [1.5e-5, '1.5e-05'],
      [1e15, '1000000000000000.0'],
      [1e16, '1e+16'],
      [123.456, '123.456'],
      [-2.5, '-2.5'],
      [3.4028234663852886e38, '3.4028234663852886e+38'],
      [5e-324, '5e-324'],
      [1 / 3, '0.3333333333333333'],
      [12345678901234568, '1.2345678901234568e+16'],
      [100, '100.0'],
    ]
    for (const [x, python] of cases) expect(pythonFloatRepr(x), String(x)).toBe(python)
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
      inputLayer: null,
      output: { kind: 'linear', scale: 0.1 },
      featureSize: 2,
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

  it('lays out the extended form: F = K + 1 features, X = E, S = 2·L·H + K + 2', () => {
    const spec = lstmSpec(extended)
    expect(spec).toMatchObject({
      features: extended.features,
      inputLayer: extended.inputLayer,
      output: extended.output,
    })
    expect([spec.featureSize, spec.inputSize, spec.stateSize]).toEqual([4, 8, 37])
    expect(spec.state).toEqual({
      lstm: { offset: 0, size: 32 },
      features: { offset: 32, size: 5 },
      output: { offset: 37, size: 0 },
    })
    const noLayer = { ...extended, layers: 1, hidden: 5, inputLayer: undefined }
    expect(lstmSpec(noLayer)).toMatchObject({ featureSize: 4, inputSize: 4, stateSize: 15 })
  })

  it('has a descriptor for every kind the schema accepts', () => {
    expect([...paperArchitectureSchema.shape.preprocessing.options, 'moments']).toEqual(
      Object.keys(featureKinds),
    )
    expect(Object.keys(outputKinds)).toEqual(['linear', 'tanh', 'tanh-rms'])
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

  it('puts the input layer first, [E, F] and [E], and the first cell reads its E outputs', () => {
    const shapes = [...weightShapes(extended)]
    expect(shapes.slice(0, 3)).toEqual([
      ['input.weight', [8, 4]],
      ['input.bias', [8]],
      ['cells.0.weight_ih', [32, 8]],
    ])
    expect(shapes).toHaveLength(12)
    const noLayer = weightShapes({ ...extended, inputLayer: undefined })
    expect(noLayer.has('input.weight')).toBe(false)
    expect(noLayer.get('cells.0.weight_ih')).toEqual([32, 4])
  })
})
