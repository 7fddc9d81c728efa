/**
 * Where sessions live (DESIGN §6): one small interface for every storage backend, so the routes
 * never know which one runs. A session is a record written once; each of its shards is a state
 * that moves one step at a time, applied exactly once next to where it is stored.
 *
 * Implementations: sql-store.ts (the registry's SQLite on Node, or D1), durable-store.ts (Durable
 * Objects on Workers, with a session index in D1). AppDeps.sessions injects one; by default the
 * app uses the SQL store on AppDeps.db.
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

/**
 * What asking for step t of a shard came to: its updates (applied now, or stored by an earlier
 * request for t with the same gradients: the same bytes), a conflict with the shard's current
 * step, a resent t whose gradients differ from those t was applied with (replay_mismatch), a
 * result that is not finite (nothing stored; `detail` says where), or a session that is gone.
 * Plain data, so that it crosses a Durable Object's RPC as it is.
 */
export type ShardStepOutcome =
  | { outcome: 'updates'; updates: Float32Array }
  | { outcome: 'conflict'; current: number }
  | { outcome: 'replay_mismatch' }
  | { outcome: 'non_finite'; detail: string; extensions?: Record<string, unknown> }
  | { outcome: 'gone' }

/** How a shard's step runs in the isolate that asks for it (sessions/shard-step.ts makes one). */
export interface ShardCompute {
  /** The optimizer step of `grads` from `state` (undefined: a fresh state), in the session's dtype. */
  step(
    state: FloatData | undefined,
    grads: Float32Array,
  ): Promise<{ updates: Float32Array; state: FloatData }>
  /** Runs a whole shard step (read, math, write) in the isolate's one-at-a-time lane. */
  exclusive<T>(task: () => Promise<T>): Promise<T>
}

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
  shardSteps(session: SessionRecord): Promise<Map<number, number>>
  /**
   * Applies step `t` of a shard exactly once: t = current + 1 runs the optimizer on `grads` and
   * stores the new state; t = current answers the stored updates byte for byte; any other t is a
   * conflict. Concurrent requests for the same t apply it once. `here` runs the step in the
   * calling isolate; a store whose shards live elsewhere runs the same step next to them instead.
   */
  stepShard(
    session: SessionRecord,
    shard: number,
    t: number,
    grads: Float32Array,
    here: ShardCompute,
  ): Promise<ShardStepOutcome>
  /** Deletes a session and every shard of it, also shards whose step lands meanwhile. */
  delete(session: SessionRecord): Promise<void>
  /** What a client holds, for its quotas: its sessions and their coordinates (numParams) summed. */
  usage(clientId: string): Promise<{ sessions: number; coordinates: number }>
}
