/** Wire-level constants shared by the server and the SDKs (DESIGN §5–6). */

/** Binary bodies: safetensors framing. */
export const safetensorsMediaType = 'application/vnd.l2o.safetensors'
export const jsonMediaType = 'application/json'

/** Dtypes a state may travel in. Updates and gradients are always F32. */
export const stateDtypes = ['F32', 'F16', 'BF16'] as const
export type StateDtype = (typeof stateDtypes)[number]

/** Coordinates one request may carry; the server advertises its own value in /v1/resolve. */
export const defaultMaxCoordinatesPerRequest = 65_536

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

/** Routes, relative to the server's origin. Path parameters are URL-encoded. */
export const routes = {
  health: '/healthz',
  openapi: '/openapi.json',
  docs: '/docs',
  optimizers: '/v1/optimizers',
  optimizer: (name: string) => `/v1/optimizers/${encodeURIComponent(name)}`,
  /** GET ?ref=<reference>[&hyperparameters=<json>] */
  resolve: '/v1/resolve',
  /** POST: stateless step, binary or JSON. */
  step: '/v1/step',
  sessions: '/v1/sessions',
  session: (id: string) => `/v1/sessions/${encodeURIComponent(id)}`,
  sessionStep: (id: string, shard: number, step: number) =>
    `/v1/sessions/${encodeURIComponent(id)}/shards/${shard}/steps/${step}`,
  adminVersions: (name: string) => `/v1/admin/optimizers/${encodeURIComponent(name)}/versions`,
  adminDeprecate: (name: string, version: string) =>
    `/v1/admin/optimizers/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/deprecate`,
  adminAlias: (name: string, alias: string) =>
    `/v1/admin/optimizers/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`,
  adminClients: '/v1/admin/clients',
  adminClientKeys: (clientId: string) => `/v1/admin/clients/${encodeURIComponent(clientId)}/keys`,
  adminKey: (keyId: string) => `/v1/admin/keys/${encodeURIComponent(keyId)}`,
} as const
