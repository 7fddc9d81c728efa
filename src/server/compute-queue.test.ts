import { describe, expect, it } from 'vitest'
import { ComputeQueue, callsInARow } from './compute-queue'
import { ApiError } from './errors'

describe('ComputeQueue turns', () => {
  it('runs one turn at a time, the next turn going round-robin over the clients waiting', async () => {
    let yields = 0
    const queue = new ComputeQueue(undefined, async () => {
      yields++
      await new Promise((resolve) => setImmediate(resolve))
    })
    let open!: () => void
    const blocker = queue.run({ clientId: 'z' }, () => new Promise<void>((resolve) => (open = resolve)))
    const order: string[] = []
    let running = 0
    // Each call its own request here: the clients alternate, one request each.
    const task = (name: string) =>
      queue.run({ clientId: name[0] }, async () => {
        running++
        expect(running).toBe(1)
        await new Promise((resolve) => setTimeout(resolve, 1))
        order.push(name)
        running--
      })
    // Client a queues three turns before b and c queue theirs: they still alternate.
    const all = [task('a1'), task('a2'), task('a3'), task('b1'), task('b2'), task('c1')]
    await new Promise((resolve) => setImmediate(resolve))
    open()
    await Promise.all([blocker, ...all])
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3'])
    // One before each turn: the blocker's and the six that follow it.
    expect(yields).toBe(7)
  })

  it("gives a request's next call the turn before other clients' calls, when it already waits, up to callsInARow", async () => {
    const queue = new ComputeQueue(undefined, () => new Promise((resolve) => setImmediate(resolve)))
    const order: string[] = []
    // Request A makes six calls in a row, each asked for as the previous one ends; B and C each
    // send one call while A's first runs.
    const a = queue.admit('a')
    const b = queue.admit('b')
    const c = queue.admit('c')
    const requestA = (async () => {
      for (const name of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) {
        await a.run(async () => {
          order.push(name)
          await new Promise((resolve) => setTimeout(resolve, 2))
        })
      }
    })()
    await new Promise((resolve) => setImmediate(resolve))
    const others = [b.run(() => order.push('b1')), c.run(() => order.push('c1'))]
    await Promise.all([requestA, ...others])
    expect(callsInARow).toBe(4)
    expect(order).toEqual(['a1', 'a2', 'a3', 'a4', 'b1', 'c1', 'a5', 'a6'])
  })

  it('hands the turn on when a task throws', async () => {
    const queue = new ComputeQueue(undefined)
    await expect(queue.run({ clientId: 'a' }, () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    )
    expect(await queue.run({ clientId: 'b' }, () => 42)).toBe(42)
  })
})

describe('ComputeQueue admission', () => {
  it("refuses past a client's share with 429 and past the total with 503, both with Retry-After", () => {
    const queue = new ComputeQueue({ perClient: 2, total: 3 })
    const a1 = queue.admit('a')
    queue.admit('a')
    const share = (() => {
      try {
        queue.admit('a')
      } catch (error) {
        return error
      }
    })() as ApiError
    expect(share).toBeInstanceOf(ApiError)
    expect(share).toMatchObject({ status: 429, code: 'rate_limited' })
    expect(share.headers['Retry-After']).toMatch(/^\d+$/)
    queue.admit('b')
    expect(() => queue.admit('c')).toThrow(expect.objectContaining({ status: 503, code: 'overloaded' }))
    expect(queue.inFlightCount()).toBe(3)
    a1.release()
    a1.release()
    expect(queue.inFlightCount('a')).toBe(1)
    expect(queue.admit('c')).toBeDefined()
  })

  it('admits everything without limits', () => {
    const queue = new ComputeQueue(undefined)
    for (let i = 0; i < 1000; i++) queue.admit('a')
    expect(queue.inFlightCount('a')).toBe(1000)
  })
})
