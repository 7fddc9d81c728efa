/**
 * Fair admission of compute (DESIGN §7, issue 11). Every step is admitted before its body is read:
 * a client may have `perClient` compute requests in flight and the server `total`; past them the
 * answer is 429 rate_limited or 503 overloaded, both with Retry-After. Admitted requests then take
 * turns: one optimizer call (a chunk of a stateless step, or a session step from reading its shard
 * to writing it back) at a time, the next turn going to the next client in round-robin order, so
 * a client with many or large requests cannot starve one with a single small request. Between two
 * turns the queue yields to the event loop, so reads, /healthz and arriving bodies are served
 * between optimizer calls and the loop is never held longer than one call.
 */
import type { MiddlewareHandler } from 'hono'
import { headerNames } from '../contract'
import type { AppEnv } from './env'
import { ApiError } from './errors'

/** Bounds of the queue; without them every request is admitted (the turns stay fair). */
export interface AdmissionLimits {
  /** Compute requests one client may have in flight (waiting or computing); past it 429. */
  perClient: number
  /** Compute requests in flight over all clients; past it 503. */
  total: number
}

/** An admitted request: take turns with `run`, and `release` once it is answered. */
export interface Ticket {
  run<T>(task: () => T | Promise<T>): Promise<T>
  release(): void
}

/** Waits one turn of the event loop (Node: setImmediate, after pending I/O). */
export type YieldToEventLoop = () => Promise<void>

const defaultYield: YieldToEventLoop = () => new Promise((resolve) => setTimeout(resolve, 0))

export class ComputeQueue {
  private readonly inFlight = new Map<string, number>()
  private total = 0
  private busy = false
  /** Turns waiting, by client, and the clients with turns waiting in round-robin order. */
  private readonly waiting = new Map<string, (() => void)[]>()
  private readonly ring: string[] = []
  /** Recent time an admitted request takes from admission to release, in ms: Retry-After. */
  private requestMs = 50

  constructor(
    readonly limits: AdmissionLimits | undefined,
    /** Waits one turn of the event loop: what the queue does between turns, for others to use too. */
    readonly yieldToEventLoop: YieldToEventLoop = defaultYield,
    private readonly clock: () => number = () => Date.now(),
  ) {}

  /** Requests in flight (waiting or computing), over all clients or for one. */
  inFlightCount(clientId?: string): number {
    return clientId === undefined ? this.total : (this.inFlight.get(clientId) ?? 0)
  }

  /** Admits one compute request of `clientId`, or throws the 429 / 503 that says when to retry. */
  admit(clientId: string): Ticket {
    const mine = this.inFlight.get(clientId) ?? 0
    const limits = this.limits
    if (limits !== undefined && mine >= limits.perClient) {
      throw new ApiError(
        'rate_limited',
        `this client has ${mine} steps in flight, its share of the server (${limits.perClient}); wait for an answer before sending more`,
        { limit: limits.perClient },
        { [headerNames.retryAfter]: String(this.retryAfterSeconds()) },
      )
    }
    if (limits !== undefined && this.total >= limits.total) {
      throw new ApiError(
        'overloaded',
        `the server has ${this.total} steps in flight, its limit; retry after the Retry-After seconds`,
        { limit: limits.total },
        { [headerNames.retryAfter]: String(this.retryAfterSeconds()) },
      )
    }
    this.inFlight.set(clientId, mine + 1)
    this.total++
    const admitted = this.clock()
    let released = false
    return {
      run: (task) => this.run(clientId, task),
      release: () => {
        if (released) return
        released = true
        this.total--
        const left = (this.inFlight.get(clientId) ?? 1) - 1
        if (left === 0) this.inFlight.delete(clientId)
        else this.inFlight.set(clientId, left)
        this.requestMs = 0.9 * this.requestMs + 0.1 * (this.clock() - admitted)
      },
    }
  }

  /** Runs `task` in `clientId`'s next turn, alone: no other turn runs until it settles. */
  async run<T>(clientId: string, task: () => T | Promise<T>): Promise<T> {
    await this.turn(clientId)
    try {
      return await task()
    } finally {
      this.next()
    }
  }

  // A turn always starts after a turn of the event loop, even when the queue is idle: requests
  // whose bodies complete in one batch of I/O callbacks would otherwise compute back to back in
  // those callbacks' microtasks, holding the loop for all of them.
  private turn(clientId: string): Promise<void> {
    if (!this.busy) {
      this.busy = true
      return this.yieldToEventLoop()
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(clientId)
      if (queue !== undefined) queue.push(resolve)
      else {
        this.waiting.set(clientId, [resolve])
        this.ring.push(clientId)
      }
    })
  }

  // Hands the turn to the next client in the ring, after one turn of the event loop.
  private next(): void {
    if (this.ring.length === 0) {
      this.busy = false
      return
    }
    void this.yieldToEventLoop().then(() => {
      const clientId = this.ring.shift() as string
      const queue = this.waiting.get(clientId) as (() => void)[]
      const resolve = queue.shift() as () => void
      if (queue.length > 0) this.ring.push(clientId)
      else this.waiting.delete(clientId)
      resolve()
    })
  }

  // About when one request in flight is answered, freeing a place: whole seconds in [1, 30].
  private retryAfterSeconds(): number {
    return Math.min(30, Math.max(1, Math.ceil(this.requestMs / 1000)))
  }
}

/** Middleware: admits the caller's compute request (after requireKey), released once answered. */
export function admitCompute(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const ticket = c.get('compute').admit(c.get('caller').clientId)
    c.set('ticket', ticket)
    try {
      await next()
    } finally {
      ticket.release()
    }
  }
}
