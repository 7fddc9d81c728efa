/**
 * A one-at-a-time lane. Session steps take it from reading their shard to writing it back, so
 * shards stepped in parallel do not hold several shards' state and garbage at once (the math is
 * single-threaded anyway, so this costs no throughput). No client I/O happens inside the lane.
 */
export class Lane {
  private tail: Promise<unknown> = Promise.resolve()

  /** Runs `task` after every task queued before it. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task)
    this.tail = result.catch(() => {})
    return result
  }
}
