/**
 * Where sessions live (DESIGN §6): one small interface for every storage backend, so the routes
 * never know which one runs. A session is a record written once; each of its shards is a state
 * that moves one step at a time, by compare-and-set.
 *
 * Implementations: sql-store.ts (the registry's SQLite on Node, D1 on Workers). AppDeps.sessions
 * injects another (e.g. Durable Objects); by default the app uses the SQL store on AppDeps.db.
 */
import type { StateDtype } from '../../contract'
import type { FloatData } from '../../safetensors'

/** A session as stored: what it is pinned to, and how its coordinates are split into shards. */
export interface SessionRecord {
  id: string
  /** The client whose key created it; only that client sees it. */
  clientId: string
  /** name@version (learned) or name (baseline). */
  optimizer: string
  digest: string
  /** Baselines only: the hyper-parameters as JSON, defaults filled. */
  hyperparameters: string | null
  numParams: number
  stateDtype: StateDtype
  /** Floats of state per coordinate (S). */
  stateSize: number
  /** Coordinates per shard (the last shard may hold fewer). */
  shardSize: number
  createdAt: string
  /** The Idempotency-Key of the request that created it, so a retried create finds it again. */
  idempotencyKey: string | null
}

/** One shard after `step` steps: its state [length, S] and the updates that step returned. */
export interface ShardState {
  step: number
  state: FloatData
  updates: Float32Array
  /**
   * Hex SHA-256 of the gradients that step was sent (gradsHash), so a retry of it can be told from
   * another request reusing its number; null when unknown (rows stored before it was kept).
   */
  gradsHash: string | null
}

/** What a compare-and-set of a shard did: stored it, or found the shard elsewhere (or gone). */
export type AdvanceOutcome = 'applied' | 'conflict'

/** Session persistence. Every method may be called concurrently, also from other isolates. */
export interface SessionStore {
  /**
   * Stores a new session, unless its client already created one with the same idempotency key:
   * then nothing is stored and that earlier session comes back.
   */
  create(session: SessionRecord): Promise<{ created: true } | { created: false; earlier: SessionRecord }>
  /** The client's session `id`, or undefined (also when it belongs to another client). */
  get(clientId: string, id: string): Promise<SessionRecord | undefined>
  /** Whether session `id` still exists. */
  exists(id: string): Promise<boolean>
  /** Steps applied so far, by shard index; a shard never stepped is absent (at step 0). */
  shardSteps(id: string): Promise<Map<number, number>>
  /** A shard's latest step, or undefined when it has none stored (a fresh state at step 0). */
  readShard(session: SessionRecord, shard: number): Promise<ShardState | undefined>
  /**
   * Stores `next` as the shard's state if it is still at step `from` (0: none stored yet);
   * 'conflict' when another step got there first, or when the session is gone.
   */
  advanceShard(session: SessionRecord, shard: number, from: number, next: ShardState): Promise<AdvanceOutcome>
  /** Deletes a session and every shard of it, also shards whose first step lands meanwhile. */
  delete(id: string): Promise<void>
  /** What a client holds, for its quotas: its sessions and their coordinates (numParams) summed. */
  usage(clientId: string): Promise<{ sessions: number; coordinates: number }>
}
