/**
 * Paces the work the Node server starts on its event loop (issue 11: the loop is never blocked for
 * more than ~50 ms). Under load many requests become ready in one batch of I/O callbacks, and
 * each runs its first part (routing, the key check, the quota counters, admission) synchronously
 * there: tens of them in a row hold the loop for ~100 ms, although each takes a few. The same holds
 * for what requests do once their bodies are in. `pace()` lets such work start at once while the
 * loop's current turn has run for less than `budgetMs`, and otherwise defers it to a later turn,
 * so timers, /healthz and other sockets are served in between.
 *
 * A turn starts in the loop's timers phase (a marker timer, armed while work arrives) and takes in
 * the I/O callbacks and setImmediate's phase after it: both phases share the budget (a marker in
 * setImmediate's phase gave the second a budget of its own, and a turn ran twice as long). One
 * piece of deferred work starts in every turn whatever the budget, so work always progresses. The
 * clock is the loop's busy time (event-loop utilization's `active`), so time the loop sat idle
 * waiting for I/O does not count: requests that arrive together at an idle server start at once.
 * The compute queue runs one optimizer call per turn between these (compute-queue.ts).
 */
import { performance as nodePerformance } from 'node:perf_hooks'

export type Pace = () => Promise<void>

/** Runs `fn` in the loop's next timers phase (the tests drive turns by hand). */
export type AtNextTurn = (fn: () => void) => void

export function loopPacer(
  budgetMs = 10,
  now: () => number = () => nodePerformance.eventLoopUtilization().active,
  atNextTurn: AtNextTurn = (fn) => setTimeout(fn, 0),
): Pace {
  let turnStart = now()
  // Whether some work started in this turn (the one that may start over the budget).
  let started = false
  let armed = false
  const mark = () => {
    if (armed) return
    armed = true
    atNextTurn(() => {
      armed = false
      turnStart = now()
      started = false
    })
  }
  return async () => {
    mark()
    while (started && now() - turnStart > budgetMs) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      mark()
    }
    started = true
  }
}
