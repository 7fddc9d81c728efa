import { describe, expect, it } from 'vitest'
import { useTestServer, weightFile } from '../../test/support/server'
import { OptimizerCache } from './optimizer-cache'
import { publishVersion } from './registry/publish'

const s = useTestServer({}, { tf: true })

describe('OptimizerCache', () => {
  it('decodes a version once, keeps the most recently used, and disposes what it evicts', async () => {
    const digests: string[] = []
    for (let i = 0; i < 3; i++) {
      const published = await publishVersion(
        s.deps.db,
        { name: 'cached', version: `1.0.${i}`, weights: weightFile(40 + i) },
        new Date(),
      )
      digests.push(published.digest)
    }
    const cache = new OptimizerCache(2)
    const [a, b, c] = digests
    const first = await cache.get(s.deps.db, a)
    expect(await cache.get(s.deps.db, a)).toBe(first)
    const [x, y] = await Promise.all([cache.get(s.deps.db, b), cache.get(s.deps.db, b)])
    expect(x).toBe(y)
    await cache.get(s.deps.db, a)
    await cache.get(s.deps.db, c)
    expect(cache.keys()).toEqual([a, c])
    expect(await cache.get(s.deps.db, b)).not.toBe(x)
  })

  it('fails for a digest with no stored weights', async () => {
    await expect(new OptimizerCache().get(s.deps.db, `sha256:${'9'.repeat(64)}`)).rejects.toThrow(
      /no weights/,
    )
  })
})
