import { describe, expect, it } from 'vitest'
import { mapBounded, shardRanges, tileRanges } from './pool'

describe('shardRanges', () => {
  it('tiles [0, n) with the fewest ranges of at most the limit, of even lengths', () => {
    expect(shardRanges(1, 8)).toEqual([{ index: 0, offset: 0, length: 1 }])
    expect(shardRanges(8, 8)).toEqual([{ index: 0, offset: 0, length: 8 }])
    expect(shardRanges(17, 8).map((r) => [r.offset, r.length])).toEqual([
      [0, 6],
      [6, 6],
      [12, 5],
    ])
    expect(shardRanges(65_537, 65_536).map((r) => r.length)).toEqual([32_769, 32_768])
    for (const [n, limit] of [
      [100, 7],
      [1_000_003, 65_536],
      [12, 12],
      [13, 1],
    ]) {
      const ranges = shardRanges(n, limit)
      expect(ranges.length).toBe(Math.ceil(n / limit))
      expect(ranges.reduce((sum, r) => sum + r.length, 0)).toBe(n)
      const lengths = ranges.map((r) => r.length)
      expect(Math.max(...lengths)).toBeLessThanOrEqual(limit)
      expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThan(ranges.length)
    }
    expect(() => shardRanges(0, 8)).toThrow(RangeError)
    expect(() => shardRanges(5, 0)).toThrow(RangeError)
  })

  it('tiles a session by the size the server gave it, even or not (sessions made before even shards)', () => {
    expect(tileRanges(20, 8).map((r) => [r.offset, r.length])).toEqual([
      [0, 8],
      [8, 8],
      [16, 4],
    ])
    expect(tileRanges(20, 7).map((r) => r.length)).toEqual([7, 7, 6])
    expect(() => tileRanges(5, 0)).toThrow(RangeError)
  })
})

describe('mapBounded', () => {
  it('returns results in input order whatever order tasks finish in', async () => {
    const out = await mapBounded([30, 10, 20, 0], 4, (ms) => new Promise((r) => setTimeout(() => r(ms), ms)))
    expect(out).toEqual([30, 10, 20, 0])
  })

  it('starts nothing new after a failure and throws the first error once in-flight tasks settle', async () => {
    const started: number[] = []
    let settled = 0
    const run = mapBounded([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i)
      await new Promise((r) => setTimeout(r, i === 1 ? 1 : 10))
      settled++
      if (i === 1) throw new Error('shard 1 failed')
      return i
    })
    await expect(run).rejects.toThrow('shard 1 failed')
    expect(started).toEqual([0, 1])
    expect(settled).toBe(2)
  })
})
