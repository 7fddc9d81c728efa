import { describe, expect, it } from 'vitest'
import { loopPacer } from './loop-pace'

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('loopPacer', () => {
  it('starts requests at once while the turn is young, and defers the rest by a turn', async () => {
    let clock = 0
    const pace = loopPacer(10, () => clock)
    await immediate() // the pacer's view of the turn starts now
    const order: string[] = []
    // a turn of the loop that has already run 4 ms: a request starts in it
    clock = 4
    await pace().then(() => order.push('young'))
    // the same turn, 12 ms in: the next request waits for the next turn (after setImmediate's phase)
    clock = 12
    setImmediate(() => order.push('other work'))
    const late = pace().then(() => order.push('late'))
    await Promise.resolve()
    expect(order).toEqual(['young'])
    await late
    expect(order).toEqual(['young', 'other work', 'late'])
  })

  it('lets a request through on the first turn that has time for it', async () => {
    let clock = 0
    const pace = loopPacer(10, () => clock)
    clock = 100 // e.g. after the loop sat idle: the marker resets the turn once it runs
    let turns = 0
    const ticker = setInterval(() => turns++, 0)
    await pace()
    clearInterval(ticker)
    expect(turns).toBeLessThanOrEqual(1)
  })
})
