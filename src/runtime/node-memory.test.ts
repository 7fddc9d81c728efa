import { describe, expect, it } from 'vitest'
import { memoryReclaimer } from './node-memory'

const MB = 1024 * 1024

describe('memoryReclaimer', () => {
  it('collects only once array-buffer memory has grown by the threshold above its floor', async () => {
    const calls: unknown[] = []
    let external = 100 * MB
    const reclaim = memoryReclaimer(
      (options) => calls.push(options),
      8 * MB,
      () => external,
    )
    await reclaim()
    external += 7 * MB
    await reclaim()
    expect(calls).toEqual([])
    external += 1 * MB
    await reclaim()
    expect(calls).toEqual([{ type: 'minor', execution: 'sync' }])
  })

  it('takes the level after a collection as the new floor', async () => {
    let collections = 0
    let external = 50 * MB
    const reclaim = memoryReclaimer(
      () => collections++,
      8 * MB,
      () => external,
    )
    await reclaim()
    external = 60 * MB
    await reclaim()
    expect(collections).toBe(1)
    // The sweeper freed less than was made: the floor moves up rather than collecting again.
    external = 55 * MB
    await reclaim()
    external = 62 * MB
    await reclaim()
    expect(collections).toBe(1)
    external = 63 * MB
    await reclaim()
    expect(collections).toBe(2)
  })

  it('never collects for a step that makes no large garbage, and still gives the event loop a turn', async () => {
    let collections = 0
    const reclaim = memoryReclaimer(
      () => collections++,
      8 * MB,
      () => 30 * MB,
    )
    let turned = false
    setImmediate(() => {
      turned = true
    })
    for (let i = 0; i < 20; i++) await reclaim()
    expect(collections).toBe(0)
    expect(turned).toBe(true)
  })
})
