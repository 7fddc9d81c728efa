import { describe, expect, it } from 'vitest'
import { extendedArchitecture } from '../../../test/support/random'
import { tinyArchitecture, useTestServer, weightFile } from '../../../test/support/server'
import { ApiError } from '../errors'
import { publishVersion } from './publish'
import { resolveReference } from './resolve'

const s = useTestServer()
const now = new Date('2026-01-01T00:00:00Z')

const versionOf = async (ref: string) => {
  const target = await resolveReference(s.deps.db, ref)
  return target.kind === 'learned' ? target.version : undefined
}

describe('publishVersion aliases', () => {
  it('keeps stable on the first version unless the input names it', async () => {
    await publishVersion(s.deps.db, { name: 'shipped', version: '1.0.0', weights: weightFile(50) }, now)
    await publishVersion(s.deps.db, { name: 'shipped', version: '1.1.0', weights: weightFile(51) }, now)
    expect(await versionOf('shipped@stable')).toBe('1.0.0')
    expect(await versionOf('shipped@latest')).toBe('1.1.0')
    const input = { name: 'shipped', version: '1.2.0', weights: weightFile(52), aliases: ['stable', 'paper'] }
    expect((await publishVersion(s.deps.db, input, now)).created).toBe(true)
    expect(await versionOf('shipped@stable')).toBe('1.2.0')
    expect(await versionOf('shipped@paper')).toBe('1.2.0')
  })

  it('moves nothing when the version is already present', async () => {
    const input = { name: 'present', version: '1.0.0', weights: weightFile(53) }
    await publishVersion(s.deps.db, input, now)
    await publishVersion(s.deps.db, { name: 'present', version: '1.1.0', weights: weightFile(54) }, now)
    const again = await publishVersion(s.deps.db, { ...input, aliases: ['stable'] }, now)
    expect(again.created).toBe(false)
    expect(await versionOf('present@stable')).toBe('1.0.0')
  })

  it("gives the name the newest version's description", async () => {
    const publish = (version: string, seed: number, description?: string) =>
      publishVersion(s.deps.db, { name: 'described', version, weights: weightFile(seed), description }, now)
    const described = async () => {
      const res = await s.app.request('/v1/optimizers/described')
      return ((await res.json()) as { description: string }).description
    }
    await publish('1.0.0', 56, 'first')
    await publish('1.1.0', 57, 'second')
    expect(await described()).toBe('second')
    await publish('1.2.0', 58)
    expect(await described()).toBe('second')
  })

  it('refuses an invalid alias before writing anything', async () => {
    for (const alias of ['latest', 'Bad_Alias']) {
      const input = { name: 'refused', version: '1.0.0', weights: weightFile(55), aliases: [alias] }
      await expect(publishVersion(s.deps.db, input, now)).rejects.toBeInstanceOf(ApiError)
    }
    await expect(resolveReference(s.deps.db, 'refused')).rejects.toBeInstanceOf(ApiError)
  })
})

describe('publishVersion refuses weights whose updates can overflow', () => {
  const withScale = (outputScale: number) => weightFile(60, { ...tinyArchitecture, outputScale })

  it.each([3e38, 1e300, -1e9, 1e8])('refuses outputScale %d with invalid_weights', async (outputScale) => {
    const input = { name: 'overflowing', version: '1.0.0', weights: withScale(outputScale) }
    const refusal = await publishVersion(s.deps.db, input, now).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(ApiError)
    expect(refusal).toMatchObject({ code: 'invalid_weights' })
    expect((refusal as ApiError).detail).toMatch(/outputScale/)
    await expect(resolveReference(s.deps.db, 'overflowing')).rejects.toBeInstanceOf(ApiError)
  })

  it('accepts a tanh-rms output at unit gradient scale up to the bound, and refuses one beyond it', async () => {
    const rms = (scale: number) =>
      weightFile(61, { ...extendedArchitecture, output: { kind: 'tanh-rms', scale, power: 0.3 } })
    const input = { name: 'rms-output', version: '1.0.0', weights: rms(1) }
    expect((await publishVersion(s.deps.db, input, now)).created).toBe(true)
    const refusal = await publishVersion(
      s.deps.db,
      { ...input, version: '1.1.0', weights: rms(2e6) },
      now,
    ).catch((e: unknown) => e)
    expect(refusal).toMatchObject({ code: 'invalid_weights' })
    expect((refusal as ApiError).detail).toMatch(/unit gradient RMS/)
  })

  it('accepts the scales optimizers use', async () => {
    for (const [version, outputScale] of [
      ['1.0.0', 0.1],
      ['1.1.0', -2],
      ['1.2.0', 0],
    ] as const) {
      const input = { name: 'bounded', version, weights: withScale(outputScale) }
      expect((await publishVersion(s.deps.db, input, now)).created).toBe(true)
    }
  })
})
