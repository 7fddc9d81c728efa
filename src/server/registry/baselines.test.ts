import { describe, expect, it } from 'vitest'
import { ApiError } from '../errors'
import { baselineConfig } from './baselines'

describe('baselineConfig', () => {
  // Pinned: a digest binds states and sessions, so it must never change for the same baseline.
  it.each([
    [
      'adam',
      { learningRate: 0.001 },
      'sha256:e42780d079e19d6fda470502b6d9c7f1fbc0e49064354d6c1028da861f732d55',
    ],
    [
      'rmsprop',
      { learningRate: 0.01, eps: 1e-6 },
      'sha256:4724c073f11a99d35abaec3aef2c4a90f427a24636cd12ec977c851451b53fb2',
    ],
    ['sgd', { learningRate: 0.1 }, 'sha256:022effeec903f58733d3d24565d2f4e8b1d184a7f509f03aad2ebe91bbd1a65d'],
  ] as const)('hashes %s %o with every default filled', async (name, hp, digest) => {
    const config = await baselineConfig(name, hp)
    expect(config.digest).toBe(digest)
    expect(await baselineConfig(name, { ...config.hyperparameters })).toMatchObject({ digest })
  })

  it('refuses bad hyper-parameters with what the baseline accepts', async () => {
    const refusal = await baselineConfig('adam', { learningRate: 0.1, beta9: 1 }).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(ApiError)
    expect(refusal).toMatchObject({
      code: 'invalid_hyperparameters',
      extensions: { required: ['learningRate'], optional: ['beta1', 'beta2', 'eps'] },
    })
  })
})
