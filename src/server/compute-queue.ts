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

/** Who takes a turn: the request (its ticket) and the client it belongs to. */
export interface TurnOwner {
  clientId: string
}

interface Waiting {
  owner: TurnOwner
  resolve: () => void
}

/** Calls of one request that may run in a row while other clients wait (see ComputeQueue.run). */
export const callsInARow = 4

export class ComputeQueue {
  private readonly inFlight = new Map<string, number>()
  private total = 0
  private busy = false
  /** Turns waiting, by client (in order), and the clients with turns waiting in round-robin order. */
  private readonly waiting = new Map<string, Waiting[]>()
  private readonly ring: string[] = []
  /**
   * The request served last, and how many calls of it ran in a row: its next call, when already
   * waiting, goes before the ring's, up to callsInARow.
   */
  private current: TurnOwner | undefined
  private callsRun = 0
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
    const owner: TurnOwner = { clientId }
    return {
      run: (task) => this.run(owner, task),
      release: () => {
        if (released) return
        released = true
        if (this.current === owner) this.current = undefined
        this.total--
        const left = (this.inFlight.get(clientId) ?? 1) - 1
        if (left === 0) this.inFlight.delete(clientId)
        else this.inFlight.set(clientId, left)
        this.requestMs = 0.9 * this.requestMs + 0.1 * (this.clock() - admitted)
      },
    }
  }

  /**
   * Runs `task` in its owner's next turn, alone: no other turn runs until it settles. Turns go
   * round-robin over the clients; a request that is served keeps the turn for its next call, if
   * that already waits, up to callsInARow calls (~50 ms of the paper's model): a large step is not
   * left half done while every other client is served, and a small one waits behind at most that
   * much of each client ahead of it.
   */
  async run<T>(owner: TurnOwner, task: () => T | Promise<T>): Promise<T> {
    await this.turn(owner)
    try {
      return await task()
    } finally {
      this.next()
    }
  }

  // A turn always starts after a turn of the event loop, even when the queue is idle: requests
  // whose bodies complete in one batch of I/O callbacks would otherwise compute back to back in
  // those callbacks' microtasks, holding the loop for all of them.
  private turn(owner: TurnOwner): Promise<void> {
    if (!this.busy) {
      this.busy = true
      this.current = owner
      this.callsRun = 1
      return this.yieldToEventLoop()
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(owner.clientId)
      if (queue !== undefined) queue.push({ owner, resolve })
      else {
        this.waiting.set(owner.clientId, [{ owner, resolve }])
        this.ring.push(owner.clientId)
      }
    })
  }

  // Hands the turn on, after one turn of the event loop: to the current request's next call if it
  // waits, else to the next client in the ring.
  private next(): void {
    if (this.ring.length === 0) {
      this.busy = false
      return
    }
    void this.yieldToEventLoop().then(() => {
      const current = this.callsRun < callsInARow ? this.current : undefined
      const own = current === undefined ? undefined : this.waiting.get(current.clientId)
      const at = own === undefined ? -1 : own.findIndex((w) => w.owner === current)
      const clientId = at >= 0 ? (current as TurnOwner).clientId : (this.ring.shift() as string)
      const queue = this.waiting.get(clientId) as Waiting[]
      const [granted] = queue.splice(Math.max(0, at), 1)
      if (queue.length === 0) {
        this.waiting.delete(clientId)
        const inRing = this.ring.indexOf(clientId)
        if (inRing >= 0) this.ring.splice(inRing, 1)
      } else if (at < 0) {
        this.ring.push(clientId)
      }
      this.callsRun = granted.owner === this.current ? this.callsRun + 1 : 1
      this.current = granted.owner
      granted.resolve()
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
