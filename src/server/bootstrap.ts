/**
 * First-start setup shared by the runtimes: an admin key and a client key so a new user can call the
 * API at once, and the shipped optimizers registered from their weight files.
 */
import { and, eq, isNull } from 'drizzle-orm'
import type { Db } from '../db/db'
import { apiKeys, clients } from '../db/schema'
import { authenticate, createClient } from './auth'
import { ApiError } from './errors'
import { sha256Hex } from './ids'
import { type PublishInput, publishVersion } from './registry/publish'

/** Secrets created by ensureKeys: shown once, to be printed by the runtime. */
export interface CreatedKeys {
  admin?: string
  client?: string
}

/**
 * Makes sure an admin and a client can call the API. A given secret (from the environment) is
 * stored if new; without one, a random key is made only when no active key of that role exists.
 * Returns the secrets it created (given ones are not echoed).
 */
export async function ensureKeys(
  db: Db,
  given: { admin?: string; client?: string },
  now: Date,
  randomBytes: (n: number) => Uint8Array,
): Promise<CreatedKeys> {
  const created: CreatedKeys = {}
  for (const role of ['admin', 'client'] as const) {
    const secret = given[role]
    if (secret !== undefined) {
      const known = await authenticate(db, secret)
      if (known === 'revoked')
        throw new Error(`the ${role} key from the environment was revoked; set another`)
      if (known === 'unknown') {
        await createClient(
          db,
          { name: role === 'admin' ? 'admin' : 'default', role, secret },
          now,
          randomBytes,
        )
      } else if (known.role !== role) {
        throw new Error(`the ${role} key from the environment belongs to a ${known.role} client`)
      }
      continue
    }
    const active = await db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .innerJoin(clients, eq(clients.id, apiKeys.clientId))
      .where(and(eq(clients.role, role), isNull(apiKeys.revokedAt)))
      .limit(1)
    if (active.length > 0) continue
    const made = await createClient(
      db,
      { name: role === 'admin' ? 'admin' : 'default', role },
      now,
      randomBytes,
    )
    created[role] = made.secret
  }
  return created
}

/** What happened to one shipped version. */
export interface SeedResult {
  name: string
  version: string
  outcome: 'created' | 'present' | 'refused'
  detail?: string
}

/**
 * Publishes shipped versions (idempotent: a version already present creates nothing). A version
 * the registry refuses (e.g. the same name@version with other bytes) is reported, not thrown.
 */
export async function seedVersions(db: Db, inputs: PublishInput[], now: Date): Promise<SeedResult[]> {
  const results: SeedResult[] = []
  for (const input of inputs) {
    try {
      const published = await publishVersion(db, input, now)
      results.push({
        name: input.name,
        version: input.version,
        outcome: published.created ? 'created' : 'present',
      })
    } catch (error) {
      if (!(error instanceof ApiError)) throw error
      results.push({ name: input.name, version: input.version, outcome: 'refused', detail: error.detail })
    }
  }
  return results
}

/** Hex SHA-256 of a key, as api_keys stores it (for scripts that seed keys directly). */
export const keyHash = sha256Hex
