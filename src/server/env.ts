/** The Hono environment every route and middleware of the app sees. */

import type { ComputeQueue, Ticket } from './compute-queue'
import type { ResolvedDeps } from './deps'
import type { OptimizerCache } from './optimizer-cache'
import type { ClientQuotaValues } from './quotas'

/** Who is calling, once a key has been checked, and the quotas that apply to it. */
export interface Caller {
  clientId: string
  keyId: string
  role: 'admin' | 'client'
  quotas: ClientQuotaValues
}

/** Hono Env: `E` is the runtime's bindings (Workers `env`; Node's incoming/outgoing). */
export interface AppEnv<E extends object = object> {
  Bindings: E
  Variables: {
    deps: ResolvedDeps
    requestId: string
    caller: Caller
    optimizers: OptimizerCache
    /** Where compute takes its turns (compute-queue.ts). */
    compute: ComputeQueue
    /** The admission of this request's compute, on the routes that compute. */
    ticket: Ticket
  }
}
