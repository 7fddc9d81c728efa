import { describe, expect, it } from 'vitest'
import { objectCount, objectName } from './durable-store'

// The store's behaviour runs in workerd (test/workers/session-store.test.ts, durable-sessions.test.ts);
// here, the placement, which is part of the stored format.
describe('where a session keeps its shards', () => {
  const layout = (shards: number) => ({ numParams: shards * 6_160 - 1, shardSize: 6_160 })

  it('gives each shard its own object up to 16, then 16, then one object per 1,024 shards', () => {
    expect([1, 2, 16, 17, 164, 16_384, 16_385].map((n) => objectCount(layout(n)))).toEqual([
      1, 2, 16, 16, 16, 16, 17,
    ])
    // 10^9 coordinates of the paper's optimizer in F32: 162,338 shards over 159 objects.
    expect(objectCount({ numParams: 1e9, shardSize: 6_160 })).toBe(159)
  })

  it('names object k of a session after the session', () => {
    expect(objectName('ses_abc', 3)).toBe('ses_abc/3')
  })
})
