import type { Db } from '../../src/db/db'

/**
 * `db` with one race made deterministic: each `method` statement on `table` first waits for
 * `before` (another request's write, say), then runs. Works on both drivers: a drizzle statement
 * runs only when awaited or run by name (a prepared query's `all()`), so `before` may be async (D1)
 * or sync (better-sqlite3).
 */
export function racingDb(
  db: Db,
  table: unknown,
  method: 'insert' | 'update' | 'delete',
  before: () => unknown,
): Db {
  return new Proxy(db, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (key !== method) return value
      return (t: unknown) => {
        const statement = (value as (t: unknown) => object).call(target, t)
        return t === table ? deferred(statement, before) : statement
      }
    },
  })
}

const executes = new Set<string | symbol>(['all', 'get', 'run', 'execute'])

// A statement builder whose every step stays deferred, and whose `then` runs `before` first.
function deferred<T extends object>(statement: T, before: () => unknown): T {
  const proxy: T = new Proxy(statement, {
    get(target, key) {
      const value = Reflect.get(target, key)
      if (typeof value !== 'function') return value
      if (key === 'then') {
        return (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
          Promise.resolve()
            .then(before)
            .then(
              () => (value as PromiseLike<unknown>['then']).call(target, onFulfilled, onRejected),
              onRejected,
            )
      }
      if (key === 'catch') {
        return (onRejected: (e: unknown) => unknown) =>
          (proxy as PromiseLike<unknown>).then(undefined, onRejected)
      }
      if (executes.has(key)) {
        // A statement run by name (a prepared query's all/get/run, or a builder's): `before` first.
        return (...args: unknown[]) =>
          Promise.resolve()
            .then(before)
            .then(() => (value as (...a: unknown[]) => unknown).apply(target, args))
      }
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return result !== null && typeof result === 'object' ? deferred(result, before) : result
      }
    },
  })
  return proxy
}
