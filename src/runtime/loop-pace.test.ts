import { describe, expect, it } from 'vitest'
import { loopPacer } from './loop-pace'

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A pacer whose turns start when the test says (instead of in the loop's timers phase). */
function pacer(now: () => number) {
  const turns: (() => void)[] = []
  const pace = loopPacer(10, now, (fn) => turns.push(fn))
  const nextTurn = () => {
    for (const fn of turns.splice(0)) fn()
  }
  return { pace, nextTurn }
}

/** Whether `promise` settles within a few turns of setImmediate (none of the pacer's own turns). */
async function settlesWithoutATurn(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  void promise.then(() => {
    settled = true
  })
  for (let i = 0; i < 5 && !settled; i++) await immediate()
  return settled
}

describe('loopPacer', () => {
  it('starts work at once while the turn is young, and defers the rest to the next turn', async () => {
    let clock = 0
    const { pace, nextTurn } = pacer(() => clock)
    nextTurn()
    clock = 4 // a turn that has run 4 ms: work starts in it
    expect(await settlesWithoutATurn(pace())).toBe(true)
    clock = 12 // 12 ms in: setImmediate's phase gets no budget of its own, the work waits for a turn
    const late = pace()
    expect(await settlesWithoutATurn(late)).toBe(false)
    nextTurn()
    expect(await settlesWithoutATurn(late)).toBe(true)
  })

  it('starts work once the loop has been idle, in the turn that follows', async () => {
    let clock = 0
    const { pace, nextTurn } = pacer(() => clock)
    nextTurn()
    await pace()
    clock = 100 // e.g. the loop sat idle; the next piece waits for the turn that starts now
    const next = pace()
    nextTurn()
    expect(await settlesWithoutATurn(next)).toBe(true)
  })

  it('counts the loop’s busy time only: work that arrives together after idling starts at once', async () => {
    const pace = loopPacer() // the default clock: event-loop utilization's active time
    await pace()
    await new Promise((resolve) => setTimeout(resolve, 30)) // idle, then two requests at once
    const both = Promise.all([pace(), pace()]).then(() => true)
    expect(await Promise.race([both, immediate().then(() => false)])).toBe(true)
  })

  it('starts one piece of work in every turn even when each turn is over budget', async () => {
    let clock = 0
    // every reading of the clock is 100 ms later: every turn is always over its budget
    const { pace, nextTurn } = pacer(() => (clock += 100))
    nextTurn()
    const done: number[] = []
    const all = [0, 1, 2].map((i) => pace().then(() => done.push(i)))
    await settlesWithoutATurn(Promise.all(all))
    expect(done).toEqual([0])
    nextTurn()
    await settlesWithoutATurn(Promise.all(all))
    expect(done).toEqual([0, 1])
    nextTurn()
    await Promise.all(all)
    expect(done).toEqual([0, 1, 2])
  })
})
