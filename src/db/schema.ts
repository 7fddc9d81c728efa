/**
 * The registry's tables (DESIGN §3–6): the one source of truth for migrations/ (drizzle-kit) on both
 * runtimes, better-sqlite3 on Node and D1 on Workers. Rows stay ≤ maxRowBytes (D1's limit).
 */
import {
  customType,
  foreignKey,
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core'

/**
 * A BLOB column that works on both drivers: D1 returns BLOBs as number[] and Workers have no Buffer,
 * so drizzle's `blob({ mode: 'buffer' })` cannot be used (notes/stack-recipes.md §3).
 */
export const bytes = customType<{ data: Uint8Array; driverData: Uint8Array | ArrayBuffer | number[] }>({
  dataType: () => 'blob',
  toDriver: (v) => v,
  fromDriver: (v) =>
    v instanceof Uint8Array
      ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
      : v instanceof ArrayBuffer
        ? new Uint8Array(v)
        : Uint8Array.from(v as number[]),
})

/** Learned optimizers by name (baselines live in code, not here). */
export const optimizers = sqliteTable('optimizers', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  createdAt: text('created_at').notNull(),
})

/** Immutable, append-only versions: the weight file itself plus its digest and card. */
export const versions = sqliteTable(
  'versions',
  {
    name: text('name')
      .notNull()
      .references(() => optimizers.name),
    version: text('version').notNull(),
    /** sha256:<hex> of `weights`. */
    digest: text('digest').notNull(),
    /** model.safetensors, byte for byte. */
    weights: bytes('weights').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    /** The architecture JSON from the weight file's metadata. */
    architecture: text('architecture').notNull(),
    /** card.json as published (JSON text), or null. */
    card: text('card'),
    status: text('status', { enum: ['active', 'deprecated'] })
      .notNull()
      .default('active'),
    deprecatedAt: text('deprecated_at'),
    createdAt: text('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.name, t.version] }),
    uniqueIndex('versions_name_digest').on(t.name, t.digest),
  ],
)

/**
 * Files published with a version (plots, analysis JSON): immutable like it. The bytes live in
 * versionFileChunks, so that no row passes maxRowBytes whatever the file's size.
 */
export const versionFiles = sqliteTable(
  'version_files',
  {
    name: text('name').notNull(),
    version: text('version').notNull(),
    /** The file's name as published, e.g. loss.png. */
    file: text('file').notNull(),
    mediaType: text('media_type').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    /** sha256:<hex> of the whole file. */
    digest: text('digest').notNull(),
    /** Chunks in version_file_chunks, numbered from 0. */
    chunks: integer('chunks').notNull(),
    createdAt: text('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.name, t.version, t.file] }),
    foreignKey({ columns: [t.name, t.version], foreignColumns: [versions.name, versions.version] }),
  ],
)

/** A file's bytes in order, each chunk at most the registry's file chunk size. */
export const versionFileChunks = sqliteTable(
  'version_file_chunks',
  {
    name: text('name').notNull(),
    version: text('version').notNull(),
    file: text('file').notNull(),
    chunk: integer('chunk').notNull(),
    bytes: bytes('bytes').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.name, t.version, t.file, t.chunk] }),
    foreignKey({
      columns: [t.name, t.version, t.file],
      foreignColumns: [versionFiles.name, versionFiles.version, versionFiles.file],
    }),
  ],
)

/** Movable names for versions (stable, latest, user-defined). */
export const aliases = sqliteTable(
  'aliases',
  {
    name: text('name')
      .notNull()
      .references(() => optimizers.name),
    alias: text('alias').notNull(),
    version: text('version').notNull(),
    digest: text('digest').notNull(),
    updatedAt: text('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.alias] })],
)

/** Every move of an alias, oldest first (the current target is the newest row). */
export const aliasHistory = sqliteTable(
  'alias_history',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    name: text('name').notNull(),
    alias: text('alias').notNull(),
    version: text('version').notNull(),
    digest: text('digest').notNull(),
    movedAt: text('moved_at').notNull(),
  },
  (t) => [index('alias_history_name_alias').on(t.name, t.alias)],
)

/** API callers. `admin` clients may call /v1/admin/*; all clients may step and hold sessions. */
export const clients = sqliteTable('clients', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  role: text('role', { enum: ['admin', 'client'] })
    .notNull()
    .default('client'),
  createdAt: text('created_at').notNull(),
})

/** API keys: only the SHA-256 of a key is stored, never the key. */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    clientId: text('client_id')
      .notNull()
      .references(() => clients.id),
    /** The key's first characters, to tell keys apart in listings. */
    prefix: text('prefix').notNull(),
    /** Hex SHA-256 of the whole key. */
    hash: text('hash').notNull(),
    createdAt: text('created_at').notNull(),
    revokedAt: text('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_hash').on(t.hash)],
)

/** Server-held optimizer state of one client's run, pinned to a digest and a parameter count. */
export const sessions = sqliteTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    clientId: text('client_id')
      .notNull()
      .references(() => clients.id),
    /** name@version (learned) or name (baseline). */
    optimizer: text('optimizer').notNull(),
    digest: text('digest').notNull(),
    /** Baselines only: the hyper-parameters (JSON, defaults filled). */
    hyperparameters: text('hyperparameters'),
    numParams: integer('num_params').notNull(),
    stateDtype: text('state_dtype', { enum: ['F32', 'F16', 'BF16'] }).notNull(),
    stateSize: integer('state_size').notNull(),
    shardSize: integer('shard_size').notNull(),
    createdAt: text('created_at').notNull(),
    /** The Idempotency-Key of the request that created it, so a retried create finds it again. */
    idempotencyKey: text('idempotency_key'),
  },
  (t) => [
    index('sessions_client').on(t.clientId),
    uniqueIndex('sessions_client_idempotency_key').on(t.clientId, t.idempotencyKey),
  ],
)

/**
 * The columns of a stored shard after its session's id, wherever shards are stored (here, and in a
 * session-shards Durable Object: shard-schema.ts). New builders each call, one set per table.
 */
export const shardColumns = () => ({
  shard: integer('shard').notNull(),
  step: integer('step').notNull(),
  /** [length, S] in the session's state dtype, little-endian. */
  state: bytes('state').notNull(),
  /** F32 [length], little-endian: the updates step `step` returned. */
  updates: bytes('updates').notNull(),
  /**
   * Hex SHA-256 of the gradients step `step` was sent (F32 little-endian bytes), so a retry with
   * other gradients is told apart from a retry; null on rows stored before it was kept.
   */
  gradsHash: text('grads_hash'),
  updatedAt: text('updated_at').notNull(),
})

/**
 * One shard's state after `step` steps, and the updates of that step so a retry gets the same bytes.
 * Created lazily by its first step: a shard with no row is a fresh state at step 0.
 */
export const sessionShards = sqliteTable(
  'session_shards',
  {
    sessionId: text('session_id')
      .notNull()
      .references(() => sessions.id),
    ...shardColumns(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.shard] })],
)

/**
 * Quotas set by an admin (issue 11): `scope` is a client id, or '*' for the defaults of every
 * client. A null column falls back to the '*' row, then to the server's built-in default.
 * `failed_auth_per_minute` counts per address, so only the '*' row's applies.
 */
export const quotas = sqliteTable('quotas', {
  scope: text('scope').primaryKey(),
  maxSessions: integer('max_sessions'),
  maxSessionCoordinates: integer('max_session_coordinates'),
  requestsPerMinute: integer('requests_per_minute'),
  failedAuthPerMinute: integer('failed_auth_per_minute'),
  updatedAt: text('updated_at').notNull(),
})

/**
 * Fixed one-minute windows of counted events: `key` is `client:<id>` (requests) or `addr:<address>`
 * (failed key checks); `window` is the minute since the epoch the count belongs to.
 */
export const rateWindows = sqliteTable('rate_windows', {
  key: text('key').primaryKey(),
  window: integer('window').notNull(),
  count: integer('count').notNull(),
})
