import { describe, expect, it } from 'vitest'
import { mapBounded, shardRanges } from './pool'

describe('shardRanges', () => {
  it('tiles [0, n) with ranges of at most the limit, the last one shorter', () => {
    expect(shardRanges(1, 8)).toEqual([{ index: 0, offset: 0, length: 1 }])
    expect(shardRanges(8, 8)).toEqual([{ index: 0, offset: 0, length: 8 }])
    expect(shardRanges(17, 8).map((r) => [r.offset, r.length])).toEqual([
      [0, 8],
      [8, 8],
      [16, 1],
    ])
    expect(() => shardRanges(0, 8)).toThrow(RangeError)
    expect(() => shardRanges(5, 0)).toThrow(RangeError)
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
