/**
 * Paces the requests the Node server starts on its event loop (issue 11: the loop is never blocked
 * for more than ~50 ms). Under load many requests become ready in one batch of I/O callbacks, and
 * each runs its first part (routing, the key check, the quota counters, admission) synchronously
 * there: tens of them in a row hold the loop for ~100 ms, although each takes a few. `pace()` lets
 * a request start at once while the loop's current turn has run for less than `budgetMs`, and
 * otherwise defers it by one turn (setImmediate), so timers, /healthz and other sockets are served
 * in between. The compute queue paces the optimizer calls the same way (compute-queue.ts).
 */
export type Pace = () => Promise<void>

export function loopPacer(budgetMs = 10, now: () => number = () => performance.now()): Pace {
  // When the loop's current turn began, as seen by a marker that runs once per turn while work
  // arrives (in setImmediate's phase: after the I/O callbacks of the turn).
  let turnStart = now()
  let marked = false
  const mark = () => {
    if (marked) return
    marked = true
    setImmediate(() => {
      marked = false
      turnStart = now()
    })
  }
  return async () => {
    mark()
    while (now() - turnStart > budgetMs) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      mark()
    }
  }
}
