/**
 * API keys (DESIGN §6, issue item 4): `Authorization: Bearer <key>`. Only the SHA-256 of a key is
 * stored; a key is shown once, when it is made. Admin clients may call /v1/admin/*; every client
 * may step and hold sessions of its own.
 */
import { eq, sql } from 'drizzle-orm'
import type { MiddlewareHandler } from 'hono'
import { type Db, prepared } from '../db/db'
import { apiKeys, clients } from '../db/schema'
import type { AppEnv, Caller } from './env'
import { ApiError } from './errors'
import { randomId, sha256Hex, toHex } from './ids'
import {
  countEvent,
  defaultScope,
  failuresInWindow,
  quotaExceeded,
  quotaJoin,
  secondsLeftInWindow,
} from './quotas'

/** Characters of a key kept in clear to tell keys apart in listings. */
const prefixLength = 12

/** A key as listed (never the secret). */
export interface ApiKeyInfo {
  id: string
  clientId: string
  prefix: string
  createdAt: string
  revokedAt: string | null
}

/** A new key and its secret (the only time the secret exists outside the caller). */
export interface NewKey {
  key: ApiKeyInfo
  secret: string
}

/** A fresh secret: `l2o_` and 32 random bytes in hex. */
export function newSecret(randomBytes: (n: number) => Uint8Array): string {
  return `l2o_${toHex(randomBytes(32))}`
}

/** True when `secret` can be a key: printable ASCII without spaces, 16 to 200 characters. */
export function isValidSecret(secret: string): boolean {
  return /^[\x21-\x7e]{16,200}$/.test(secret)
}

/** Stores a key for a client; `secret` defaults to a fresh random one. */
export async function createKey(
  db: Db,
  clientId: string,
  now: Date,
  randomBytes: (n: number) => Uint8Array,
  secret: string = newSecret(randomBytes),
): Promise<NewKey> {
  if (!isValidSecret(secret))
    throw new ApiError('invalid_request', 'a key must be 16 to 200 printable characters')
  const key: ApiKeyInfo = {
    id: randomId(randomBytes, 'key', 8),
    clientId,
    prefix: secret.slice(0, prefixLength),
    createdAt: now.toISOString(),
    revokedAt: null,
  }
  await db.insert(apiKeys).values({ ...key, hash: await sha256Hex(secret) })
  return { key, secret }
}

/** A client as listed. */
export interface ClientInfo {
  id: string
  name: string
  createdAt: string
}

/** Stores a client and its first key. */
export async function createClient(
  db: Db,
  input: { name: string; role: 'admin' | 'client'; secret?: string },
  now: Date,
  randomBytes: (n: number) => Uint8Array,
): Promise<{ client: ClientInfo; key: ApiKeyInfo; secret: string }> {
  const client: ClientInfo = {
    id: randomId(randomBytes, 'cl', 8),
    name: input.name,
    createdAt: now.toISOString(),
  }
  await db.insert(clients).values({ ...client, role: input.role })
  const { key, secret } = await createKey(db, client.id, now, randomBytes, input.secret)
  return { client, key, secret }
}

// The quota tables' aliases and columns the key check joins: built once, not per request.
const { own, defaults, columns, quotasOf } = quotaJoin()

/** The caller a secret belongs to, with its quotas (one query), or why it does not authenticate. */
export async function authenticate(db: Db, secret: string): Promise<Caller | 'unknown' | 'revoked'> {
  const query = prepared(db, 'authenticate', () =>
    db
      .select({
        keyId: apiKeys.id,
        clientId: apiKeys.clientId,
        revokedAt: apiKeys.revokedAt,
        role: clients.role,
        ...columns,
      })
      .from(apiKeys)
      .innerJoin(clients, eq(clients.id, apiKeys.clientId))
      .leftJoin(own, eq(own.scope, apiKeys.clientId))
      .leftJoin(defaults, eq(defaults.scope, defaultScope))
      .where(eq(apiKeys.hash, sql.placeholder('hash')))
      .prepare(),
  )
  const row = await query.get({ hash: await sha256Hex(secret) })
  if (row === undefined) return 'unknown'
  if (row.revokedAt !== null) return 'revoked'
  return { clientId: row.clientId, keyId: row.keyId, role: row.role, quotas: quotasOf(row) }
}

const challenge = { 'WWW-Authenticate': 'Bearer realm="l2o"' }

/**
 * Middleware: requires a valid key (of an admin client when `role` is 'admin') and sets `caller`.
 * Counts the caller's request against its requestsPerMinute quota, and each failed key check
 * against its address's failedAuthPerMinute: an address past that gets 429 before its key is
 * even looked at, so keys cannot be guessed at speed.
 */
export function requireKey(role: 'client' | 'admin' = 'client'): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const deps = c.get('deps')
    const header = c.req.header('authorization')
    if (header === undefined) {
      throw new ApiError(
        'unauthorized',
        'this route needs an API key: send Authorization: Bearer <key> (npm start prints one on first start)',
        {},
        challenge,
      )
    }
    const now = deps.now()
    const address = `addr:${deps.clientAddress?.(c.req.raw) ?? 'unknown'}`
    const failures = await failuresInWindow(deps.db, address, now)
    if (failures.count >= failures.limit) {
      throw quotaExceeded(
        'failedAuthPerMinute',
        failures.limit,
        'too many failed key checks from this address in this minute; wait, then send a valid key',
        secondsLeftInWindow(now),
      )
    }
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header)
    const caller = match === null ? 'malformed' : await authenticate(deps.db, match[1])
    if (caller === 'malformed' || caller === 'unknown' || caller === 'revoked') {
      await countEvent(deps.db, address, now)
      throw new ApiError(
        'unauthorized',
        caller === 'malformed'
          ? 'malformed Authorization header: send Authorization: Bearer <key>'
          : // One answer for unknown and revoked keys: it must not tell a guesser which keys once existed.
            'invalid API key; ask an admin for a key',
        {},
        challenge,
      )
    }
    const requests = await deps.rateCounter(deps.db, `client:${caller.clientId}`, now)
    if (requests > caller.quotas.requestsPerMinute) {
      throw quotaExceeded(
        'requestsPerMinute',
        caller.quotas.requestsPerMinute,
        `this client sent ${requests} requests in this minute`,
        secondsLeftInWindow(now),
      )
    }
    if (role === 'admin' && caller.role !== 'admin') {
      throw new ApiError(
        'forbidden',
        'this route needs an admin key; client keys may only step and hold sessions',
      )
    }
    c.set('caller', caller)
    await next()
  }
}
