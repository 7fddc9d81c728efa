import { evenShardSize } from '../contract'

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

/**
 * Splits `numParams` coordinates into the fewest consecutive ranges of at most `limit`, of even
 * lengths (the contract's evenShardSize: the last shorter by less than their number): a stateless
 * run's requests.
 */
export function shardRanges(numParams: number, limit: number): CoordinateRange[] {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`shard limit must be ≥ 1, got ${limit}`)
  return tileRanges(
    numParams,
    Number.isSafeInteger(numParams) && numParams >= 1 ? evenShardSize(numParams, limit) : 1,
  )
}

/** Range k of `numParams` coordinates is [k·size, min((k + 1)·size, numParams)): a session's shards, as the server made them. */
export function tileRanges(numParams: number, size: number): CoordinateRange[] {
  if (!Number.isSafeInteger(numParams) || numParams < 1)
    throw new RangeError(`numParams must be ≥ 1, got ${numParams}`)
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`shard size must be ≥ 1, got ${size}`)
  const ranges: CoordinateRange[] = []
  for (let offset = 0, index = 0; offset < numParams; offset += size, index++) {
    ranges.push({ index, offset, length: Math.min(size, numParams - offset) })
  }
  return ranges
}
