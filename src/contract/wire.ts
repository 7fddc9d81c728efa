/** Wire-level constants shared by the server and the SDKs (DESIGN §5–6). */

/** Binary bodies: safetensors framing. */
export const safetensorsMediaType = 'application/vnd.l2o.safetensors'
export const jsonMediaType = 'application/json'

/** Dtypes a state may travel in. Updates and gradients are always F32. */
export const stateDtypes = ['F32', 'F16', 'BF16'] as const
export type StateDtype = (typeof stateDtypes)[number]

/** Coordinates one request may carry; the server advertises its own value in /v1/resolve. */
export const defaultMaxCoordinatesPerRequest = 65_536

/**
 * The shard length that splits `numParams` coordinates into the fewest shards of at most `limit`,
 * as evenly as can be (the last shorter by less than the shards' number): the SDKs' request shards
 * and the server's session shards. Each shard is one call of the update, and an optimizer with a
 * `gain` (docs/optimizer-math.md §6) pools over a call's coordinates, so none is left with a handful.
 */
export const evenShardSize = (numParams: number, limit: number): number =>
  Math.ceil(numParams / Math.ceil(numParams / limit))

/** No stored row may exceed this many bytes (D1's limit; enforced on both runtimes). */
export const maxRowBytes = 2_000_000

/** Tensor names in binary bodies. */
export const tensorNames = { grads: 'grads', state: 'state', updates: 'updates' } as const

/**
 * `__metadata__` keys in binary bodies (all values are strings, as safetensors requires).
 * Request: optimizer (a reference), digest (the digest the state was made under, or a pin),
 * hyperparameters (JSON, baselines only), state_dtype (dtype of the returned state when none is sent),
 * step (a session step number). Response: optimizer (name@version), digest, step.
 */
export const metadataKeys = {
  optimizer: 'optimizer',
  digest: 'digest',
  hyperparameters: 'hyperparameters',
  stateDtype: 'state_dtype',
  step: 'step',
} as const

/** HTTP headers with a meaning in this API. */
export const headerNames = {
  digest: 'L2O-Digest',
  /** RFC 9745: present (`@<unix seconds>`) when the version that answered is deprecated. */
  deprecation: 'Deprecation',
  requestId: 'X-Request-Id',
  idempotencyKey: 'Idempotency-Key',
  retryAfter: 'Retry-After',
} as const

/**
 * Every route's path, relative to the server's origin, as a template with `{param}` placeholders:
 * the one place each path is written. The OpenAPI document uses these as they are, the server
 * registers them through honoPath, and clients fill them through `routes`.
 */
export const paths = {
  health: '/healthz',
  openapi: '/openapi.json',
  docs: '/docs',
  optimizers: '/v1/optimizers',
  optimizer: '/v1/optimizers/{name}',
  /** GET: a file published with a version (plots, analysis JSON). */
  versionFile: '/v1/optimizers/{name}/versions/{version}/files/{file}',
  /** GET ?ref=<reference>[&hyperparameters=<json>] */
  resolve: '/v1/resolve',
  /** POST: stateless step, binary or JSON. */
  step: '/v1/step',
  sessions: '/v1/sessions',
  session: '/v1/sessions/{id}',
  sessionStep: '/v1/sessions/{id}/shards/{shard}/steps/{step}',
  adminVersions: '/v1/admin/optimizers/{name}/versions',
  adminDeprecate: '/v1/admin/optimizers/{name}/versions/{version}/deprecate',
  adminAlias: '/v1/admin/optimizers/{name}/aliases/{alias}',
  adminClients: '/v1/admin/clients',
  adminClientKeys: '/v1/admin/clients/{id}/keys',
  adminKey: '/v1/admin/keys/{id}',
  adminQuotas: '/v1/admin/quotas',
  adminClientQuotas: '/v1/admin/clients/{id}/quotas',
} as const

/** A path template with its `{param}` placeholders filled in, each URL-encoded. */
export function fillPath(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params[name])))
}

/** A path template in Hono's form: `:param` for each `{param}`. */
export type HonoPath<T extends string> = T extends `${infer Head}{${infer Param}}${infer Tail}`
  ? `${Head}:${Param}${HonoPath<Tail>}`
  : T

/** A path template in Hono's form, `:param` for `{param}` (typed, so handlers see their params). */
export function honoPath<T extends string>(template: T): HonoPath<T> {
  return template.replace(/\{(\w+)\}/g, ':$1') as HonoPath<T>
}

/** Routes as clients call them: `paths` with their parameters filled in. */
export const routes = {
  health: paths.health,
  openapi: paths.openapi,
  docs: paths.docs,
  optimizers: paths.optimizers,
  optimizer: (name: string) => fillPath(paths.optimizer, { name }),
  versionFile: (name: string, version: string, file: string) =>
    fillPath(paths.versionFile, { name, version, file }),
  resolve: paths.resolve,
  step: paths.step,
  sessions: paths.sessions,
  session: (id: string) => fillPath(paths.session, { id }),
  sessionStep: (id: string, shard: number, step: number) => fillPath(paths.sessionStep, { id, shard, step }),
  adminVersions: (name: string) => fillPath(paths.adminVersions, { name }),
  adminDeprecate: (name: string, version: string) => fillPath(paths.adminDeprecate, { name, version }),
  adminAlias: (name: string, alias: string) => fillPath(paths.adminAlias, { name, alias }),
  adminClients: paths.adminClients,
  adminClientKeys: (clientId: string) => fillPath(paths.adminClientKeys, { id: clientId }),
  adminKey: (keyId: string) => fillPath(paths.adminKey, { id: keyId }),
  adminQuotas: paths.adminQuotas,
  adminClientQuotas: (clientId: string) => fillPath(paths.adminClientQuotas, { id: clientId }),
} as const
