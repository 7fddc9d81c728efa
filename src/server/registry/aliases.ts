/** Alias moves, recorded in alias_history so every past target stays visible. */
import { and, eq } from 'drizzle-orm'
import { aliasPattern } from '../../contract'
import type { Db } from '../../db/db'
import { aliases, aliasHistory } from '../../db/schema'

/** An alias a publish may name: a valid alias name other than `latest`, which follows publishing. */
export function isSettableAlias(alias: string): boolean {
  return aliasPattern.test(alias) && alias !== 'latest'
}

/** An alias target. */
export interface AliasTarget {
  name: string
  alias: string
  version: string
  digest: string
}

/**
 * Points `alias` at a version and appends the move to its history. With `onlyIfAbsent`, an alias
 * that exists is left alone. Returns whether anything moved (moving to the current target is a no-op).
 */
export async function moveAlias(
  db: Db,
  target: AliasTarget,
  now: Date,
  options: { onlyIfAbsent?: boolean } = {},
): Promise<boolean> {
  const { name, alias, version, digest } = target
  const at = now.toISOString()
  const current = await db
    .select({ version: aliases.version })
    .from(aliases)
    .where(and(eq(aliases.name, name), eq(aliases.alias, alias)))
    .get()
  if (current !== undefined && (options.onlyIfAbsent || current.version === version)) return false
  if (current === undefined) {
    const inserted = await db
      .insert(aliases)
      .values({ name, alias, version, digest, updatedAt: at })
      .onConflictDoNothing()
      .returning({ alias: aliases.alias })
    if (inserted.length === 0) return options.onlyIfAbsent ? false : moveAlias(db, target, now, options)
  } else {
    await db
      .update(aliases)
      .set({ version, digest, updatedAt: at })
      .where(and(eq(aliases.name, name), eq(aliases.alias, alias)))
  }
  await db.insert(aliasHistory).values({ name, alias, version, digest, movedAt: at })
  return true
}
