/**
 * The session-shards Durable Object (wrangler.toml: binding SESSION_SHARDS, SQLite-backed): holds
 * shards of sessions in its own SQLite (src/db/shard-schema.ts, shard-migrations/ applied when it
 * starts) and steps them there on the fused kernel, as the Worker would (DESIGN §6). What it does is
 * server/sessions/object-shards.ts; this class only wires its storage and bindings.
 */
import { DurableObject } from 'cloudflare:workers'
import { drizzle as d1 } from 'drizzle-orm/d1'
import { drizzle } from 'drizzle-orm/durable-sqlite'
import { migrate } from 'drizzle-orm/durable-sqlite/migrator'
import migrations from '../../shard-migrations/migrations.js'
import kernel from '../core/fused/lstm.wasm'
import * as schema from '../db/schema'
import * as shardSchema from '../db/shard-schema'
import { Lane } from '../server/lane'
import { OptimizerCache } from '../server/optimizer-cache'
import {
  type ObjectShards,
  objectCompute,
  objectShards,
  type ShardStepRequest,
} from '../server/sessions/object-shards'
import type { SessionRecord, ShardCompute } from '../server/sessions/store'
import { initTf } from './tf-workers'
import type { Bindings } from './workers'

// Per isolate, shared by the objects it runs: decoded weights, and one step at a time (memory).
const optimizers = new OptimizerCache()
const lane = new Lane()

/** Shards of sessions, stepped where they are stored. Its methods are called over RPC by the store. */
export class SessionShards extends DurableObject<Bindings> {
  private readonly shards: ObjectShards
  private readonly computeFor: (session: SessionRecord) => Promise<ShardCompute>

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    const db = drizzle(ctx.storage, { schema: shardSchema })
    this.shards = objectShards(db, () => new Date())
    this.computeFor = objectCompute({ db: d1(env.DB, { schema }), initTf, kernel, optimizers }, lane)
    void ctx.blockConcurrencyWhile(async () => migrate(db, migrations))
  }

  async step(request: ShardStepRequest) {
    return this.shards.step(request, await this.computeFor(request.session))
  }

  steps(sessionId: string) {
    return this.shards.steps(sessionId)
  }

  drop(sessionId: string) {
    this.shards.drop(sessionId)
  }
}
