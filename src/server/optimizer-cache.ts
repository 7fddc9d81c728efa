/**
 * Learned optimizer instances by digest (bounded LRU), so a version's weights are decoded and
 * loaded into the fused kernel (or uploaded to tfjs) once, not per request. A digest names
 * immutable bytes, so entries never go stale.
 */
import { eq } from 'drizzle-orm'
import { fusedLstmOptimizer, lstmOptimizer, type Optimizer } from '../core'
import type { Db } from '../db/db'
import { versions } from '../db/schema'
import { decodeLstmWeights } from '../weights'

/** An LRU of learned optimizers keyed by digest. */
export class OptimizerCache {
  private readonly entries = new Map<string, Optimizer>()
  private readonly loading = new Map<string, Promise<Optimizer>>()

  constructor(readonly capacity = 8) {}

  /**
   * The optimizer of a published digest, decoding its weights from the database on a miss: on the
   * fused kernel when one is given, else on tfjs. The cache holds one kind per process (the deps').
   */
  async get(db: Db, digest: string, kernel?: WebAssembly.Module): Promise<Optimizer> {
    const hit = this.entries.get(digest)
    if (hit !== undefined) {
      this.entries.delete(digest)
      this.entries.set(digest, hit)
      return hit
    }
    let pending = this.loading.get(digest)
    if (pending === undefined) {
      pending = load(db, digest, kernel).finally(() => this.loading.delete(digest))
      this.loading.set(digest, pending)
    }
    const optimizer = await pending
    if (!this.entries.has(digest)) {
      this.entries.set(digest, optimizer)
      this.evict()
    }
    return optimizer
  }

  /** Digests held, least recently used first. */
  keys(): string[] {
    return [...this.entries.keys()]
  }

  private evict(): void {
    while (this.entries.size > this.capacity) {
      const [oldest, optimizer] = this.entries.entries().next().value as [string, Optimizer]
      this.entries.delete(oldest)
      // update() is synchronous and runStep looks the optimizer up again for every call, so no
      // request uses it after this.
      optimizer.dispose?.()
    }
  }
}

async function load(db: Db, digest: string, kernel: WebAssembly.Module | undefined): Promise<Optimizer> {
  const row = await db
    .select({ weights: versions.weights })
    .from(versions)
    .where(eq(versions.digest, digest))
    .get()
  if (row === undefined) throw new Error(`no weights stored for ${digest}`)
  const weights = decodeLstmWeights(row.weights)
  return kernel === undefined ? lstmOptimizer(weights) : fusedLstmOptimizer(weights, kernel)
}
