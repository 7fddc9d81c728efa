/**
 * Keeping the Node server's resident memory near its live data while it serves large steps: V8
 * collects big typed arrays only once their total grows by ~64 MB, and a step at the per-request
 * limit handles ~42 MB of body and answer.
 */
import v8 from 'node:v8'

/** V8's gc() as --expose-gc provides it. */
export type Gc = (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void

/**
 * V8's gc(), when node runs with --expose-gc (as `npm start` does); without it the server still
 * works, with more resident memory at the per-request limit. Not switched on with
 * v8.setFlagsFromString at run time: Node documents flag changes after start-up as unpredictable.
 */
export function exposeGc(): Gc | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc
  return typeof gc === 'function' ? (gc as Gc) : undefined
}

/** Array-buffer memory that may be collected before a minor GC is worth its time. */
export const reclaimThresholdBytes = 8 * 1024 * 1024

/**
 * AppDeps.reclaimMemory for Node, called between the optimizer calls of a large step: a minor GC
 * once the memory outside V8's heap (typed arrays, mostly) has grown by `thresholdBytes` above its
 * lowest level since the last one, then one turn of the event loop, in which the freed arrays are
 * released by V8's background sweeper and the sockets are served (the rest of a body read, an
 * answer written). A step that makes no large garbage (the binary F32 step writes in place) pays
 * only the turn: a forced minor GC costs ~0.5-2 ms even then, ~10-20 ms a step at the limit.
 */
export function memoryReclaimer(
  gc: Gc,
  thresholdBytes = reclaimThresholdBytes,
  externalBytes: () => number = () => v8.getHeapStatistics().external_memory,
): () => Promise<void> {
  let floor = Number.POSITIVE_INFINITY
  return () => {
    const external = externalBytes()
    floor = Math.min(floor, external)
    if (external - floor >= thresholdBytes) {
      gc({ type: 'minor', execution: 'sync' })
      // What it frees is released during the turn below: the next reading sets the new floor.
      floor = Number.POSITIVE_INFINITY
    }
    return new Promise<void>((resolve) => setImmediate(resolve))
  }
}
