import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  extendedArchitecture,
  paperArchitecture,
  quadraticArchitecture,
  randomLstmWeights,
} from '../../test/support/random'
import { type Architecture, architectureJson, inputSize, weightShapes } from '../contract'
import type { LstmWeights } from '../core/lstm-weights'
import { decode, encode, type Tensor } from '../safetensors'
import {
  decodeLstmWeights,
  digestOf,
  encodeLstmWeights,
  readWeightFile,
  WeightsError,
  type WeightsErrorCode,
} from './load'

const paper = paperArchitecture
const quadratic = quadraticArchitecture

// Deterministic pseudo-random floats, so the expected digest below never changes.
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return out
}

function weightsFor(arch: Architecture): LstmWeights {
  const h = arch.hidden
  return {
    architecture: arch,
    cells: Array.from({ length: arch.layers }, (_, k) => ({
      weightIh: values(4 * h * (k === 0 ? inputSize(arch) : h), 10 * k + 1),
      weightHh: values(4 * h * h, 10 * k + 2),
      biasIh: values(4 * h, 10 * k + 3),
      biasHh: values(4 * h, 10 * k + 4),
    })),
    head: { weight: values(h, 98), bias: values(1, 99) },
  }
}

/** The weight file's tensors and metadata, for editing into a broken file. */
function parts(arch: Architecture) {
  const file = decode(encodeLstmWeights(weightsFor(arch)))
  return { tensors: new Map(file.tensors), metadata: { ...file.metadata! } }
}

function expectCode(fn: () => unknown, code: WeightsErrorCode, message?: RegExp): void {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(WeightsError)
    expect((error as WeightsError).code, (error as Error).message).toBe(code)
    if (message) expect((error as Error).message).toMatch(message)
    return
  }
  throw new Error(`expected WeightsError ${code}, nothing was thrown`)
}

describe('weight files', () => {
  it('round-trips weights for several architectures', () => {
    for (const arch of [paper, quadratic, { ...paper, layers: 3, hidden: 4, p: 5, outputScale: -0.5 }]) {
      const weights = weightsFor(arch)
      const bytes = encodeLstmWeights(weights)
      expect(decodeLstmWeights(bytes)).toEqual(weights)
    }
  })

  it('writes the state_dict names and F32 tensors, with format and architecture metadata', () => {
    const file = decode(encodeLstmWeights(weightsFor(paper)))
    expect(file.metadata).toEqual({ format: 'l2o/1', architecture: architectureJson(paper) })
    expect([...file.tensors.keys()].sort()).toEqual([...weightShapes(paper).keys()].sort())
    expect(file.tensors.get('cells.0.weight_ih')!.shape).toEqual([80, 2])
    expect(file.tensors.get('cells.1.weight_ih')!.shape).toEqual([80, 20])
    expect(file.tensors.get('head.weight')!.shape).toEqual([1, 20])
    for (const t of file.tensors.values()) expect(t.dtype).toBe('F32')
  })

  it('reads the extended fixture files train/ wrote, with their input layer', async () => {
    const root = path.join(import.meta.dirname, '../../test/fixtures/extended')
    for (const [name, inputShape] of [
      ['moments-elu-tanh', [8, 4]],
      ['moments-linear', undefined],
    ] as const) {
      const bytes = new Uint8Array(readFileSync(path.join(root, name, 'model.safetensors')))
      const golden = decode(new Uint8Array(readFileSync(path.join(root, name, 'golden.safetensors'))))
      const { weights, digest } = await readWeightFile(bytes)
      expect(digest).toBe(golden.metadata?.digest)
      expect(weights.architecture).toHaveProperty('features.kind', 'moments')
      const file = decode(bytes)
      if (inputShape === undefined) {
        expect(weights.input).toBeUndefined()
      } else {
        expect(file.tensors.get('input.weight')?.shape).toEqual(inputShape)
        expect(weights.input?.weight).toEqual(file.tensors.get('input.weight')?.data)
        expect(weights.input?.bias).toEqual(file.tensors.get('input.bias')?.data)
      }
      expect(decodeLstmWeights(encodeLstmWeights(weights))).toEqual(weights)
    }
  })

  it('round-trips extended weights, with and without an input layer', () => {
    const noLayer = {
      ...extendedArchitecture,
      inputLayer: undefined,
      output: { kind: 'linear', scale: 2 },
    } as const
    for (const arch of [extendedArchitecture, noLayer]) {
      const weights = randomLstmWeights(arch, 3)
      const file = decode(encodeLstmWeights(weights))
      expect([...file.tensors.keys()].sort()).toEqual([...weightShapes(arch).keys()].sort())
      expect(file.metadata?.architecture).toBe(architectureJson(arch))
      expect(decodeLstmWeights(encodeLstmWeights(weights))).toEqual(weights)
    }
  })

  it('returns copies that do not alias the file bytes', () => {
    const bytes = encodeLstmWeights(weightsFor(quadratic))
    const weights = decodeLstmWeights(bytes)
    expect(weights.head.bias.buffer).not.toBe(bytes.buffer)
    bytes.fill(0, bytes.length - 4)
    expect(weights.head.bias[0]).toBe(values(1, 99)[0])
  })

  it('is deterministic: equal weights give equal bytes', () => {
    expect(encodeLstmWeights(weightsFor(paper))).toEqual(encodeLstmWeights(weightsFor(paper)))
  })

  it('accepts extra metadata keys', () => {
    const { tensors, metadata } = parts(quadratic)
    expect(decodeLstmWeights(encode(tensors, { ...metadata, name: 'lstm-cw' })).architecture).toEqual(
      quadratic,
    )
  })

  describe('refuses', () => {
    it('a file that is not safetensors, keeping the codec error as cause', () => {
      const error = (() => {
        try {
          decodeLstmWeights(new Uint8Array(4))
        } catch (e) {
          return e
        }
      })()
      expect(error).toBeInstanceOf(WeightsError)
      expect((error as WeightsError).code).toBe('invalid_file')
      expect((error as WeightsError).message).toMatch(/truncated/)
      expect((error as Error).cause).toBeDefined()
    })

    it('a wrong or missing format', () => {
      const { tensors, metadata } = parts(quadratic)
      expectCode(
        () => decodeLstmWeights(encode(tensors, { ...metadata, format: 'l2o/2' })),
        'unsupported_format',
        /l2o\/2/,
      )
      expectCode(
        () => decodeLstmWeights(encode(tensors, { architecture: metadata.architecture })),
        'unsupported_format',
      )
      expectCode(() => decodeLstmWeights(encode(tensors)), 'unsupported_format', /no __metadata__/)
    })

    it('a bad architecture', () => {
      const { tensors, metadata } = parts(quadratic)
      const withArch = (architecture: string) => encode(tensors, { ...metadata, architecture })
      expectCode(() => decodeLstmWeights(withArch('{')), 'invalid_architecture', /not valid JSON/)
      expectCode(() => decodeLstmWeights(withArch('{"kind":"lstm-cw"}')), 'invalid_architecture', /layers/)
      expectCode(
        () => decodeLstmWeights(withArch(JSON.stringify({ ...quadratic, layers: 100 }))),
        'invalid_architecture',
        /layers/,
      )
      expectCode(() => decodeLstmWeights(encode(tensors, { format: 'l2o/1' })), 'invalid_architecture')
    })

    it('an extended architecture with absurd or non-finite parameters, naming the field', () => {
      const { tensors, metadata } = decode(encodeLstmWeights(randomLstmWeights(extendedArchitecture, 4)))
      const withArch = (architecture: string) =>
        decodeLstmWeights(encode(new Map(tensors), { ...metadata, architecture }))
      const features = extendedArchitecture.features
      for (const [bad, field] of [
        [{ features: { ...features, beta2: 1 } }, /features\.beta2/],
        [{ features: { ...features, beta1: [0.9, 1.5] } }, /features\.beta1\.1/],
        [{ features: { ...features, eps: 0 } }, /features\.eps/],
        [{ output: { kind: 'tanh', scale: 1e39 } }, /output\.scale/],
        [{ inputLayer: { size: 8, activation: 'relu' } }, /inputLayer\.activation/],
        [{ outputScale: 0.1 }, /outputScale/],
      ] as const) {
        const text = JSON.stringify({ ...extendedArchitecture, ...bad })
        expectCode(() => withArch(text), 'invalid_architecture', field)
      }
      // Python writes NaN and Infinity as bare words, which are not JSON.
      const nan = architectureJson(extendedArchitecture).replace('1e-08', 'NaN')
      expectCode(() => withArch(nan), 'invalid_architecture', /not valid JSON/)
    })

    it("an extended file without its input layer's bias, or with an input layer it does not declare", () => {
      const { tensors, metadata } = decode(encodeLstmWeights(randomLstmWeights(extendedArchitecture, 4)))
      const missing = new Map(tensors)
      missing.delete('input.bias')
      expectCode(
        () => decodeLstmWeights(encode(missing, metadata)),
        'invalid_weights',
        /moments, elu 8, tanh: missing tensor "input\.bias" \[8\]/,
      )
      const undeclared = architectureJson({ ...extendedArchitecture, inputLayer: undefined })
      expectCode(
        () => decodeLstmWeights(encode(new Map(tensors), { ...metadata, architecture: undeclared })),
        'invalid_weights',
        /unexpected tensor "input\.weight"/,
      )
    })

    it('a missing tensor, naming it and its shape', () => {
      const { tensors, metadata } = parts(paper)
      tensors.delete('cells.1.bias_hh')
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /missing.*"cells\.1\.bias_hh" \[80\]/,
      )
    })

    it('an extra tensor', () => {
      const { tensors, metadata } = parts(paper)
      tensors.set('cells.2.bias_hh', { dtype: 'F32', shape: [80], data: new Float32Array(80) })
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /unexpected.*"cells\.2\.bias_hh"/,
      )
    })

    it('a misnamed tensor, reporting both the missing and the unexpected name', () => {
      const { tensors, metadata } = parts(paper)
      tensors.set('head.weights', tensors.get('head.weight')!)
      tensors.delete('head.weight')
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /missing tensor "head\.weight" \[1, 20\].*unexpected tensor "head\.weights"/,
      )
    })

    it('a misshaped tensor, with expected and actual shapes', () => {
      const { tensors, metadata } = parts(paper)
      tensors.set('cells.0.weight_ih', { dtype: 'F32', shape: [80, 1], data: new Float32Array(80) })
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /"cells\.0\.weight_ih" has shape \[80, 1\], expected \[80, 2\]/,
      )
      const transposed = parts(paper)
      transposed.tensors.set('head.weight', { dtype: 'F32', shape: [20, 1], data: new Float32Array(20) })
      expectCode(
        () => decodeLstmWeights(encode(transposed.tensors, transposed.metadata)),
        'invalid_weights',
        /\[20, 1\]/,
      )
    })

    it('weights whose shapes fit another architecture', () => {
      const { tensors, metadata } = parts(paper)
      const other = encode(tensors, { ...metadata, architecture: architectureJson({ ...paper, hidden: 21 }) })
      expectCode(() => decodeLstmWeights(other), 'invalid_weights', /expected \[84, 2\]/)
    })

    it('a 16-bit tensor', () => {
      const { tensors, metadata } = parts(quadratic)
      tensors.set('head.bias', { dtype: 'BF16', shape: [1], data: new Uint16Array(1) } satisfies Tensor)
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /"head\.bias" is BF16, expected F32/,
      )
    })

    it('non-finite values, naming tensor and index', () => {
      const { tensors, metadata } = parts(quadratic)
      const data = new Float32Array(12)
      data[7] = Number.NaN
      tensors.set('cells.0.bias_ih', { dtype: 'F32', shape: [12], data })
      expectCode(
        () => decodeLstmWeights(encode(tensors, metadata)),
        'invalid_weights',
        /"cells\.0\.bias_ih".*NaN.*index 7/,
      )
    })

    it('to write weights that do not match their architecture', () => {
      const w = weightsFor(paper)
      expectCode(() => encodeLstmWeights({ ...w, cells: w.cells.slice(1) }), 'invalid_weights', /1 cells/)
      expectCode(
        () => encodeLstmWeights({ ...w, head: { ...w.head, weight: new Float32Array(3) } }),
        'invalid_weights',
        /head\.weight/,
      )
      expectCode(
        () => encodeLstmWeights({ ...w, architecture: { ...paper, p: undefined } }),
        'invalid_architecture',
      )
    })
  })
})

describe('digest', () => {
  it('is "sha256:" + the lowercase hex SHA-256 of the bytes', async () => {
    const empty = await digestOf(new Uint8Array(0))
    expect(empty).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    const bytes = encodeLstmWeights(weightsFor(paper))
    expect(await digestOf(bytes)).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`)
  })

  it('hashes only the view it is given, not the whole buffer', async () => {
    const backing = new Uint8Array([1, 2, 3, 4])
    expect(await digestOf(backing.subarray(1, 3))).toBe(
      `sha256:${createHash('sha256')
        .update(new Uint8Array([2, 3]))
        .digest('hex')}`,
    )
  })

  it('readWeightFile returns weights and a digest that is stable across encodes', async () => {
    const a = await readWeightFile(encodeLstmWeights(weightsFor(paper)))
    const b = await readWeightFile(encodeLstmWeights(a.weights))
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(b.digest).toBe(a.digest)
    expect(a.weights).toEqual(weightsFor(paper))
  })
})
