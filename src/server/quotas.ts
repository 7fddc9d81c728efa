/**
 * Quotas per client (issue 11), stored in the database so they hold on every runtime (D1 on
 * Workers, where many isolates serve one client): sessions held, coordinates held, requests per
 * minute; and failed key checks per minute per address. Counts live in fixed one-minute windows
 * (`rate_windows`), one conditional upsert per counted event.
 */
import { and, eq, lt, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/sqlite-core'
import { headerNames, type Quotas } from '../contract'
import { type Db, prepared } from '../db/db'
import { quotas, rateWindows } from '../db/schema'
import { ApiError } from './errors'

/** The quotas one client has. */
export type ClientQuotaValues = Omit<Quotas, 'failedAuthPerMinute'>

/** What applies when neither the client nor the defaults row says otherwise. */
export const builtInQuotas: Quotas = {
  maxSessions: 32,
  // 2^24 coordinates: 5.4 GB of F32 state at the paper's 80 floats per coordinate.
  maxSessionCoordinates: 16_777_216,
  requestsPerMinute: 12_000,
  failedAuthPerMinute: 30,
}

/** The scope of the defaults row of `quotas`. */
export const defaultScope = '*'

/** A quotas row as stored: null means "not set here". */
export type QuotaRow = { [K in keyof Quotas]: number | null }

/** The quotas that apply: the client's own setting, else the defaults row's, else the built-in. */
export function effectiveQuotas(
  own: Partial<QuotaRow> | undefined,
  defaults: Partial<QuotaRow> | undefined,
): Quotas {
  const pick = (k: keyof Quotas) => own?.[k] ?? defaults?.[k] ?? builtInQuotas[k]
  return {
    maxSessions: pick('maxSessions'),
    maxSessionCoordinates: pick('maxSessionCoordinates'),
    requestsPerMinute: pick('requestsPerMinute'),
    failedAuthPerMinute: defaults?.failedAuthPerMinute ?? builtInQuotas.failedAuthPerMinute,
  }
}

const quotaColumns = {
  maxSessions: quotas.maxSessions,
  maxSessionCoordinates: quotas.maxSessionCoordinates,
  requestsPerMinute: quotas.requestsPerMinute,
  failedAuthPerMinute: quotas.failedAuthPerMinute,
}

/** The stored row of a scope, or undefined. */
export async function quotaRow(db: Db, scope: string): Promise<QuotaRow | undefined> {
  return db.select(quotaColumns).from(quotas).where(eq(quotas.scope, scope)).get()
}

/** Sets some fields of a scope's row (null clears one), creating the row when needed. */
export async function setQuotaRow(
  db: Db,
  scope: string,
  fields: Partial<QuotaRow>,
  now: Date,
): Promise<void> {
  const updatedAt = now.toISOString()
  await db
    .insert(quotas)
    .values({ scope, ...fields, updatedAt })
    .onConflictDoUpdate({ target: quotas.scope, set: { ...fields, updatedAt } })
}

/**
 * A client's own quotas row and the defaults row, to left-join on the client id: `columns` to
 * select (flat: drizzle would null both nested objects of two aliases of one table when one is
 * absent), and `quotasOf` to read the effective quotas from a selected row.
 */
export function quotaJoin() {
  const own = alias(quotas, 'own_quotas')
  const defaults = alias(quotas, 'default_quotas')
  const columns = {
    ownMaxSessions: own.maxSessions,
    ownMaxSessionCoordinates: own.maxSessionCoordinates,
    ownRequestsPerMinute: own.requestsPerMinute,
    defaultMaxSessions: defaults.maxSessions,
    defaultMaxSessionCoordinates: defaults.maxSessionCoordinates,
    defaultRequestsPerMinute: defaults.requestsPerMinute,
  }
  const quotasOf = (row: { [K in keyof typeof columns]: number | null }): ClientQuotaValues => {
    const { failedAuthPerMinute: _, ...values } = effectiveQuotas(
      {
        maxSessions: row.ownMaxSessions,
        maxSessionCoordinates: row.ownMaxSessionCoordinates,
        requestsPerMinute: row.ownRequestsPerMinute,
      },
      {
        maxSessions: row.defaultMaxSessions,
        maxSessionCoordinates: row.defaultMaxSessionCoordinates,
        requestsPerMinute: row.defaultRequestsPerMinute,
      },
    )
    return values
  }
  return { own, defaults, columns, quotasOf }
}

/** The minute since the epoch that `now` falls in. */
export function windowOf(now: Date): number {
  return Math.floor(now.getTime() / 60_000)
}

/** Whole seconds until the window of `now` ends (at least 1): the Retry-After of a rate quota. */
export function secondsLeftInWindow(now: Date): number {
  return Math.max(1, Math.ceil((60_000 - (now.getTime() % 60_000)) / 1000))
}

/**
 * Counts one event for `key` in the window of `now` and returns the window's count so far. Rows of
 * windows that are over are deleted when a key starts a new window, so the table holds the keys
 * active in the last two minutes.
 */
export async function countEvent(db: Db, key: string, now: Date): Promise<number> {
  return addEvents(db, key, windowOf(now), 1)
}

/** Adds `n` events to `key`'s count in `window` (one conditional upsert); returns the new count. */
async function addEvents(db: Db, key: string, window: number, n: number): Promise<number> {
  const upsert = prepared(db, 'addEvents', () => {
    const [inWindow, added] = [sql.placeholder('window'), sql.placeholder('n')]
    return db
      .insert(rateWindows)
      .values({ key: sql.placeholder('key'), window: inWindow, count: added })
      .onConflictDoUpdate({
        target: rateWindows.key,
        set: {
          count: sql`case when ${rateWindows.window} = ${inWindow} then ${rateWindows.count} + ${added} else ${added} end`,
          window: sql`${inWindow}`,
        },
      })
      .returning({ count: rateWindows.count })
      .prepare()
  })
  const [row] = await upsert.all({ key, window, n })
  const count = row?.count ?? n
  if (count === n) await db.delete(rateWindows).where(lt(rateWindows.window, window - 1))
  return count
}

/** Counts a client's requests in the window of `now` for its requestsPerMinute quota, in `db`. */
export type RateCounter = (db: Db, key: string, now: Date) => Promise<number>

/** Every request written through to the database at once: exact across processes (the default). */
export const directRateCounter: RateCounter = countEvent

/**
 * Requests counted in this process (one counter per process or isolate, whatever `db` object each
 * request brings) and added to the database at most once every `flushMs` per key
 * (the first request of a key's window is written at once). On Workers a session step then makes no
 * D1 write of its own: a client stepping 10 times a second makes one write a second, not ten. The
 * count a request sees is the database's (as of this isolate's last write) plus what this isolate
 * counted since, so a client spread over several isolates can exceed its limit by what the others
 * counted in their last `flushMs`; events an isolate had not written when the window ends are not
 * added to the database.
 */
export function batchedRateCounter(flushMs = 1000, maxKeys = 10_000): RateCounter {
  const keys = new Map<string, { window: number; shared: number; pending: number; writtenAt: number }>()
  return async (db, key, now) => {
    const window = windowOf(now)
    let k = keys.get(key)
    if (k === undefined || k.window !== window) {
      if (keys.size >= maxKeys) {
        for (const [other, v] of keys) if (v.window !== window) keys.delete(other)
      }
      k = { window, shared: 0, pending: 0, writtenAt: Number.NEGATIVE_INFINITY }
      keys.set(key, k)
    }
    k.pending += 1
    const t = now.getTime()
    if (t - k.writtenAt >= flushMs) {
      const n = k.pending
      k.pending = 0
      k.writtenAt = t
      k.shared = await addEvents(db, key, window, n)
    }
    return k.shared + k.pending
  }
}

/** The count of `key` in the window of `now` (0 when none), and the failed-auth limit with it. */
export async function failuresInWindow(
  db: Db,
  key: string,
  now: Date,
): Promise<{ count: number; limit: number }> {
  const query = prepared(db, 'failuresInWindow', () =>
    db
      .select({ count: rateWindows.count, limit: quotas.failedAuthPerMinute })
      .from(rateWindows)
      .leftJoin(quotas, eq(quotas.scope, defaultScope))
      .where(
        and(eq(rateWindows.key, sql.placeholder('key')), eq(rateWindows.window, sql.placeholder('window'))),
      )
      .prepare(),
  )
  const row = await query.get({ key, window: windowOf(now) })
  return { count: row?.count ?? 0, limit: row?.limit ?? builtInQuotas.failedAuthPerMinute }
}

/**
 * The refusal of a request past a quota, naming it: 429 with Retry-After for a rate (waiting
 * helps), 403 for what a client holds (only releasing some helps).
 */
export function quotaExceeded(
  quota: keyof Quotas,
  limit: number,
  detail: string,
  retryAfterSeconds?: number,
): ApiError {
  const headers: Record<string, string> =
    retryAfterSeconds === undefined ? {} : { [headerNames.retryAfter]: String(retryAfterSeconds) }
  return new ApiError(
    'quota_exceeded',
    `${detail} (quota ${quota} = ${limit})`,
    { quota, limit },
    headers,
    retryAfterSeconds === undefined ? 403 : 429,
  )
}
