/**
 * Runs `task` over `items` with at most `limit` in flight and returns the results in input order.
 * After the first failure no new task starts; the tasks in flight settle, then the first error is
 * thrown (so nothing is left running behind the caller's back).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failed = false
  let firstError: unknown
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++
      try {
        results[index] = await task(items[index], index)
      } catch (error) {
        if (!failed) firstError = error
        failed = true
      }
    }
  }
  const workers = Math.max(1, Math.min(Math.floor(limit) || 1, items.length))
  await Promise.all(Array.from({ length: workers }, worker))
  if (failed) throw firstError
  return results
}

/** A contiguous range of coordinates. */
export interface CoordinateRange {
  index: number
  offset: number
  length: number
}

/** Splits `numParams` coordinates into consecutive ranges of at most `limit` (the last may be shorter). */
export function shardRanges(numParams: number, limit: number): CoordinateRange[] {
  if (!Number.isSafeInteger(numParams) || numParams < 1)
    throw new RangeError(`numParams must be ≥ 1, got ${numParams}`)
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`shard limit must be ≥ 1, got ${limit}`)
  const ranges: CoordinateRange[] = []
  for (let offset = 0, index = 0; offset < numParams; offset += limit, index++) {
    ranges.push({ index, offset, length: Math.min(limit, numParams - offset) })
  }
  return ranges
}
