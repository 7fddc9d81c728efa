/**
 * Seeds a D1 database (DESIGN §7): the shipped optimizers under weights/ and, when L2O_ADMIN_KEY or
 * L2O_CLIENT_KEY is set, an admin client and a client whose keys those are (stored as SHA-256 only).
 *
 * The rows are made by the server's own publishVersion and createClient on an in-memory SQLite with
 * migrations/ applied, then written out as SQL for `wrangler d1 execute --file`. Every statement is
 * idempotent (seeding twice changes nothing; a registry that already has a name's aliases keeps
 * them) and shorter than D1's 100 KB statement limit: longer values are appended in guarded chunks.
 *
 *   tsx scripts/seed-d1.ts --out .wrangler/seed.sql
 *   wrangler d1 execute DB --local --file .wrangler/seed.sql        (--remote for the deployed one)
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { getTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core'
import * as schema from '../src/db/schema'
import { createNodeDeps } from '../src/runtime/node'
import { readShippedVersions, shippedWeightsDir } from '../src/runtime/shipped-weights'
import { createClient } from '../src/server/auth'
import { type PublishInput, publishVersion } from '../src/server/registry/publish'

/** D1's limit on one SQL statement, in bytes (Cloudflare's D1 limits page). */
export const maxStatementBytes = 100_000
// Room for the UPDATE around an appended chunk: table, column and primary-key literals.
const chunkBytes = maxStatementBytes - 2_000

/** A key to register: the secret is hashed by createClient and never written out. */
export interface SeedKey {
  name: string
  role: 'admin' | 'client'
  secret: string
}

/** The seed as SQL statements, in foreign-key order, each under maxStatementBytes. */
export async function seedStatements(
  versions: PublishInput[],
  keys: SeedKey[],
  now = new Date(),
): Promise<string[]> {
  const { db, sqlite, close } = createNodeDeps({ dataDir: ':memory:' })
  try {
    for (const version of versions) await publishVersion(db, version, now)
    // Ids derived from the key, so the same key seeds the same rows again (INSERT OR IGNORE no-ops).
    for (const key of keys) await createClient(db, key, now, bytesDerivedFrom(key.secret))
    const rows = (table: SQLiteTable) => sqlite.prepare(`SELECT * FROM "${getTableConfig(table).name}"`).all()
    return [
      ...insertsOf(schema.optimizers, rows(schema.optimizers)),
      ...insertsOf(schema.versions, rows(schema.versions)),
      ...insertsOf(schema.versionFiles, rows(schema.versionFiles)),
      ...insertsOf(schema.versionFileChunks, rows(schema.versionFileChunks)),
      ...aliasInserts(rows(schema.aliasHistory), rows(schema.aliases)),
      ...insertsOf(schema.clients, rows(schema.clients)),
      ...insertsOf(schema.apiKeys, rows(schema.apiKeys)),
    ]
  } finally {
    close()
  }
}

type Row = Record<string, unknown>

// History is written only with the alias it belongs to, and only while that alias does not exist,
// so a re-seed neither duplicates history nor moves an alias an admin has moved since.
function aliasInserts(history: unknown[], aliases: unknown[]): string[] {
  return (aliases as Row[]).flatMap((alias) => {
    const absent = `NOT EXISTS (SELECT 1 FROM "aliases" WHERE "name" = ${literal(alias.name)} AND "alias" = ${literal(alias.alias)})`
    const moves = (history as Row[])
      .filter((h) => h.name === alias.name && h.alias === alias.alias)
      .map(({ id: _, ...h }) => {
        const columns = Object.keys(h)
        return `INSERT INTO "alias_history" (${columns.map(quoteId).join(', ')}) SELECT ${columns.map((c) => literal(h[c])).join(', ')} WHERE ${absent};`
      })
    return [...moves, ...insertsOf(schema.aliases, [alias])]
  })
}

/** INSERT OR IGNORE per row; a value too long for one statement starts empty and is appended in chunks. */
function insertsOf(table: SQLiteTable, rows: unknown[]): string[] {
  const config = getTableConfig(table)
  const keyColumns = [
    ...config.columns.filter((c) => c.primary).map((c) => c.name),
    ...config.primaryKeys.flatMap((k) => k.columns.map((c) => c.name)),
  ]
  return (rows as Row[]).flatMap((row) => {
    const columns = Object.keys(row)
    const long = new Set(columns.filter((c) => literal(row[c]).length > chunkBytes / 2))
    const values = columns.map((c) =>
      long.has(c) ? (typeof row[c] === 'string' ? "''" : "X''") : literal(row[c]),
    )
    const insert = `INSERT OR IGNORE INTO ${quoteId(config.name)} (${columns.map(quoteId).join(', ')}) VALUES (${values.join(', ')});`
    if (insert.length > chunkBytes) throw new Error(`a ${config.name} row is too long for one statement`)
    const where = keyColumns.map((c) => `${quoteId(c)} = ${literal(row[c])}`).join(' AND ')
    return [insert, ...[...long].flatMap((c) => appends(config.name, c, row[c], where))]
  })
}

// Each append applies only while the column holds exactly the chunks before it, so appends to a
// row that already existed (an ignored insert) match nothing.
function appends(table: string, column: string, value: unknown, where: string): string[] {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : (value as Uint8Array)
  const out: string[] = []
  let written = 0
  for (const chunk of typeof value === 'string' ? textChunks(value) : blobChunks(bytes)) {
    const appended =
      typeof chunk === 'string'
        ? `${quoteId(column)} || ${literal(chunk)}`
        : `CAST(${quoteId(column)} || ${literal(chunk)} AS BLOB)`
    out.push(
      `UPDATE ${quoteId(table)} SET ${quoteId(column)} = ${appended} WHERE ${where} AND length(CAST(${quoteId(column)} AS BLOB)) = ${written};`,
    )
    written += typeof chunk === 'string' ? new TextEncoder().encode(chunk).length : chunk.length
  }
  return out
}

function* blobChunks(bytes: Uint8Array): Generator<Uint8Array> {
  const size = Math.floor(chunkBytes / 2) // two hex digits a byte
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

// Whole code points, at most chunkBytes / 2 UTF-8 bytes (so at most chunkBytes with quotes doubled).
function* textChunks(text: string): Generator<string> {
  let chunk = ''
  let size = 0
  for (const ch of text) {
    const bytes = new TextEncoder().encode(ch).length
    if (size + bytes > chunkBytes / 2) {
      yield chunk
      chunk = ''
      size = 0
    }
    chunk += ch
    size += bytes
  }
  if (chunk.length > 0) yield chunk
}

const quoteId = (name: string): string => `"${name.replaceAll('"', '""')}"`

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL'
  if (value instanceof Uint8Array)
    return `X'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') return String(value)
  throw new Error(`cannot write ${typeof value} as SQL`)
}

/** A deterministic stand-in for randomBytes: SHA-256 in counter mode over the key. */
function bytesDerivedFrom(secret: string): (n: number) => Uint8Array {
  let counter = 0
  return (n) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 32) {
      out.set(
        createHash('sha256')
          .update(`l2o-seed-id\0${counter++}\0${secret}`)
          .digest()
          .subarray(0, n - i),
        i,
      )
    }
    return out
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, weights: { type: 'string', default: shippedWeightsDir } },
  })
  const keys: SeedKey[] = []
  if (process.env.L2O_ADMIN_KEY)
    keys.push({ name: 'admin', role: 'admin', secret: process.env.L2O_ADMIN_KEY })
  if (process.env.L2O_CLIENT_KEY)
    keys.push({ name: 'client', role: 'client', secret: process.env.L2O_CLIENT_KEY })
  const versions = await readShippedVersions(values.weights)
  const sql = `${(await seedStatements(versions, keys)).join('\n')}\n`
  if (values.out === undefined) process.stdout.write(sql)
  else writeFileSync(values.out, sql)
  const shipped = versions.map((v) => `${v.name}@${v.version}`).join(', ') || 'none'
  process.stderr.write(`seed: optimizers ${shipped}; ${keys.length} key(s) as SHA-256\n`)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
