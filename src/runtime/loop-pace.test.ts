import { describe, expect, it } from 'vitest'
import { loopPacer } from './loop-pace'

const timer = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

describe('loopPacer', () => {
  it('starts work at once while the turn is young, and defers the rest to the next turn', async () => {
    let clock = 0
    const pace = loopPacer(10, () => clock)
    await timer() // the pacer's view of the turn starts in a timers phase
    const order: string[] = []
    // a turn of the loop that has already run 4 ms: work starts in it
    clock = 4
    await pace().then(() => order.push('young'))
    // the same turn, 12 ms in: the next piece waits for the next turn, after its timers
    clock = 12
    setImmediate(() => order.push('immediate'))
    const late = pace().then(() => order.push('late'))
    setTimeout(() => order.push('next turn'), 0)
    await Promise.resolve()
    expect(order).toEqual(['young'])
    await late
    expect(order).toEqual(['young', 'immediate', 'next turn', 'late'])
  })

  it('gives setImmediate’s phase no budget of its own: the turn began with its timers', async () => {
    let clock = 0
    const pace = loopPacer(10, () => clock)
    await timer()
    await pace()
    clock = 30 // I/O callbacks ran 30 ms: deferred work waits through any number of immediates
    let immediates = 0
    let done = false
    const late = pace().then(() => {
      done = true
    })
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      if (!done) immediates++
    }
    await late
    expect(immediates).toBeGreaterThanOrEqual(1)
  })

  it('starts one piece of work in every turn even when each turn is over budget', async () => {
    let clock = 0
    // every reading of the clock is 100 ms later: every turn is always over its budget
    const pace = loopPacer(10, () => (clock += 100))
    let turns = 0
    const ticker = setInterval(() => turns++, 0)
    await Promise.all([pace(), pace(), pace()])
    clearInterval(ticker)
    expect(turns).toBeLessThanOrEqual(4)
  })
})
