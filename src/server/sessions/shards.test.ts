import { describe, expect, it } from 'vitest'
import { maxRowBytes } from '../../contract'
import { describeSession, shardCount, shardRange, shardSizeFor } from './shards'
import type { SessionRecord } from './store'

describe('shards', () => {
  it('sizes shards so one row holds the state and the last updates', () => {
    expect(shardSizeFor(80, 'F32', 65_536)).toBe(Math.floor((maxRowBytes - 4096) / 324))
    expect(shardSizeFor(80, 'F16', 65_536)).toBe(Math.floor((maxRowBytes - 4096) / 164))
    expect(shardSizeFor(0, 'F32', 65_536)).toBe(65_536)
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const n = shardSizeFor(80, dtype, 65_536)
      expect(n * (80 * (dtype === 'F32' ? 4 : 2) + 4)).toBeLessThanOrEqual(maxRowBytes)
    }
  })

  it('tile the coordinates in order, the last one shorter, each at its step', () => {
    const session = { id: 'ses_1', numParams: 7, shardSize: 3 } as SessionRecord
    expect(shardCount(session)).toBe(3)
    expect(shardRange(session, 2)).toEqual({ offset: 6, length: 1 })
    expect(describeSession(session, new Map([[1, 4]]))).toMatchObject({
      shardCount: 3,
      steps: [
        { first: 0, last: 0, step: 0 },
        { first: 1, last: 1, step: 4 },
        { first: 2, last: 2, step: 0 },
      ],
    })
  })

  it('describe the steps as runs, one for a new session however many shards it has', () => {
    const huge = { id: 'ses_2', numParams: 1_000_000_000, shardSize: 1000 } as SessionRecord
    const fresh = describeSession(huge, new Map())
    expect(fresh).toMatchObject({ shardCount: 1_000_000, steps: [{ first: 0, last: 999_999, step: 0 }] })
    expect(JSON.stringify(fresh).length).toBeLessThan(1000)
    const stepped = describeSession(
      huge,
      new Map([
        [2, 1],
        [0, 1],
        [1, 1],
        [999_999, 2],
      ]),
    )
    expect(stepped.steps).toEqual([
      { first: 0, last: 2, step: 1 },
      { first: 3, last: 999_998, step: 0 },
      { first: 999_999, last: 999_999, step: 2 },
    ])
  })
})
