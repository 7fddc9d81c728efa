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
    expect(describeSession(session, new Map([[1, 4]])).shards).toEqual([
      { index: 0, offset: 0, length: 3, step: 0 },
      { index: 1, offset: 3, length: 3, step: 4 },
      { index: 2, offset: 6, length: 1, step: 0 },
    ])
  })
})
