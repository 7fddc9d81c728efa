/**
 * Examples for the OpenAPI document: one request and one response per operation, typed by the
 * contract (so they change with it), and a problem example per error status. Values are those of a
 * fresh `npm start`: l2o-mnist@1.1.0 and its real digest.
 */
import type {
  AliasInfo,
  ClientQuotas,
  CreateClientResponse,
  CreateSessionRequest,
  JsonSessionStepResponse,
  JsonStepRequest,
  JsonStepResponse,
  OptimizerDetail,
  OptimizerSummary,
  ProblemCode,
  PublishVersionResponse,
  Quotas,
  Resolved,
  Session,
  VersionInfo,
} from '../contract'
import { ApiError, problemBody } from './errors'

const digest = 'sha256:97fa96c4a7ccfe3b49d088df16fd43f468c92d56628909b5216cf44748778310'
const olderDigest = 'sha256:e92867911d64dce0c18f16109539cd6ddf40c073e67e4ddbb0744accdd6b5440'
const architecture = {
  kind: 'lstm-cw',
  layers: 2,
  hidden: 20,
  preprocessing: 'log-sign',
  p: 10,
  outputScale: 0.1,
} as const
const at = '2026-01-01T00:00:00.000Z'

const version: VersionInfo = {
  name: 'l2o-mnist',
  version: '1.1.0',
  digest,
  status: 'active',
  createdAt: at,
  sizeBytes: 22132,
  architecture,
  card: { name: 'l2o-mnist', version: '1.1.0', taskFamily: 'mnist-mlp', plots: { loss: 'loss.png' } },
  files: [
    {
      name: 'loss.png',
      mediaType: 'image/png',
      sizeBytes: 132911,
      digest: 'sha256:1988bd395d393c03a3ee4c29a4d709d4c33c26b85b7256be873d153877fc5593',
    },
  ],
}

const alias: AliasInfo = {
  alias: 'stable',
  version: '1.1.0',
  digest,
  updatedAt: at,
  history: [
    { version: '1.0.0', digest: olderDigest, movedAt: '2025-12-01T00:00:00.000Z' },
    { version: '1.1.0', digest, movedAt: at },
  ],
}

const optimizerList: { optimizers: OptimizerSummary[] } = {
  optimizers: [
    {
      name: 'l2o-mnist',
      kind: 'learned',
      description: 'Coordinatewise LSTM (L=2, H=20, log-sign p=10) for the MNIST MLP.',
      versions: ['1.0.0', '1.1.0'],
      aliases: { latest: '1.1.0', stable: '1.1.0' },
    },
    {
      name: 'adam',
      kind: 'baseline',
      description: 'Adam with bias correction (torch.optim.Adam).',
      versions: [],
      aliases: {},
    },
  ],
}

const optimizerDetail: OptimizerDetail = {
  name: 'l2o-mnist',
  kind: 'learned',
  description: 'Coordinatewise LSTM (L=2, H=20, log-sign p=10) for the MNIST MLP.',
  versions: [version],
  aliases: [alias],
}

const resolved: Resolved = {
  reference: 'l2o-mnist@stable',
  name: 'l2o-mnist',
  kind: 'learned',
  version: '1.1.0',
  digest,
  deprecated: false,
  architecture,
  hyperparameters: null,
  stateSize: 80,
  maxCoordinatesPerRequest: 65536,
  stateDtypes: ['F32', 'F16', 'BF16'],
}

const stepRequest: JsonStepRequest = { optimizer: 'l2o-mnist@1.1.0', grads: [0.1, -0.2, 0.03] }
const stepResponse: JsonStepResponse = {
  optimizer: 'l2o-mnist@1.1.0',
  digest,
  numParams: 1,
  stateSize: 80,
  updates: [-0.0213],
  state: Array.from({ length: 80 }, (_, i) => Number((0.01 * Math.sin(i)).toFixed(4))),
}
const baselineStepRequest: JsonStepRequest = {
  optimizer: 'adam',
  hyperparameters: { learningRate: 0.001 },
  grads: [0.1],
}

const createSession: CreateSessionRequest = { optimizer: 'l2o-mnist@1.1.0', numParams: 3 }
const session: Session = {
  id: 'ses_0123abcd',
  optimizer: 'l2o-mnist@1.1.0',
  digest,
  numParams: 3,
  stateDtype: 'F32',
  stateSize: 80,
  shardSize: 6172,
  shardCount: 1,
  steps: [{ first: 0, last: 0, step: 0 }],
  createdAt: at,
}
const sessionStep: JsonSessionStepResponse = { step: 1, digest, updates: [-0.0213, 0.0311, -0.0052] }

const published: PublishVersionResponse = {
  name: 'my-opt',
  version: '1.0.0',
  digest,
  created: true,
  files: ['analysis.json', 'loss.png'],
}
const key = {
  id: 'key_0123abcd',
  clientId: 'cli_0123abcd',
  prefix: 'l2o_3f9a',
  createdAt: at,
  revokedAt: null,
}
const createdClient: CreateClientResponse = {
  client: { id: 'cli_0123abcd', name: 'alice', createdAt: at },
  key,
  secret: 'l2o_3f9a0c…(64 hex digits, shown once)',
}

const defaultQuotas: Quotas = {
  maxSessions: 32,
  maxSessionCoordinates: 16_777_216,
  requestsPerMinute: 12_000,
  failedAuthPerMinute: 30,
}
const clientQuotas: ClientQuotas = {
  clientId: 'cli_0123abcd',
  quotas: { maxSessions: 4, maxSessionCoordinates: 16_777_216, requestsPerMinute: 600 },
  overrides: { maxSessions: 4, requestsPerMinute: 600 },
  usage: { sessions: 1, sessionCoordinates: 15_910 },
}

/** Request and response examples by operation ("METHOD path" as in the document). */
export const operationExamples = {
  'GET /healthz': { response: { status: 'ok', runtime: 'node', backend: 'wasm', kernel: 'fused-wasm' } },
  'GET /openapi.json': {
    response: { openapi: '3.1.0', info: { title: 'l2o', version: '1.0.0' }, paths: {} },
  },
  'GET /docs': { response: '<!doctype html>…Swagger UI on /openapi.json…' },
  'GET /v1/optimizers': { response: optimizerList },
  'GET /v1/optimizers/{name}': { response: optimizerDetail },
  'GET /v1/optimizers/{name}/versions/{version}/files/{file}': {
    response: { regression: { rows: 40960, fits: { 'Adam direction m0.9/r alone': { r2: 0.71 } } } },
  },
  'GET /v1/resolve': { response: resolved },
  'POST /v1/step': {
    request: stepRequest,
    otherRequests: { baseline: baselineStepRequest },
    response: stepResponse,
  },
  'POST /v1/sessions': { request: createSession, response: session },
  'GET /v1/sessions/{id}': { response: session },
  // 204: no body to show.
  'DELETE /v1/sessions/{id}': { response: undefined },
  'POST /v1/sessions/{id}/shards/{shard}/steps/{step}': {
    request: { grads: [0.1, -0.2, 0.03] },
    response: sessionStep,
  },
  'POST /v1/admin/optimizers/{name}/versions': { request: { version: '1.0.0' }, response: published },
  'POST /v1/admin/optimizers/{name}/versions/{version}/deprecate': {
    response: { ...version, status: 'deprecated' } satisfies VersionInfo,
  },
  'PUT /v1/admin/optimizers/{name}/aliases/{alias}': { request: { version: '1.1.0' }, response: alias },
  'POST /v1/admin/clients': { request: { name: 'alice' }, response: createdClient },
  'POST /v1/admin/clients/{id}/keys': { response: { key, secret: createdClient.secret } },
  'DELETE /v1/admin/keys/{id}': { response: { ...key, revokedAt: at } },
  'GET /v1/admin/quotas': { response: defaultQuotas },
  'PUT /v1/admin/quotas': { request: { requestsPerMinute: 6000 }, response: defaultQuotas },
  'GET /v1/admin/clients/{id}/quotas': { response: clientQuotas },
  'PUT /v1/admin/clients/{id}/quotas': {
    request: { maxSessions: 4, requestsPerMinute: 600, maxSessionCoordinates: null },
    response: clientQuotas,
  },
} as const

// One realistic answer per status, with the detail the server would give.
const problemSamples: Partial<Record<number, [ProblemCode, string]>> = {
  400: ['invalid_request', 'grads must be a non-empty array of numbers'],
  401: ['unauthorized', 'invalid API key; ask an admin for a key'],
  403: ['forbidden', 'this route needs an admin key'],
  404: ['optimizer_not_found', "no optimizer 'l2o-mnsit'; GET /v1/optimizers lists them"],
  409: [
    'digest_mismatch',
    `the state was made under ${olderDigest}, not ${digest}; send the digest the state was made under`,
  ],
  413: ['payload_too_large', 'the body is over 8388608 bytes; send fewer coordinates or use binary'],
  415: ['unsupported_media_type', 'send application/json or application/vnd.l2o.safetensors'],
  406: ['not_acceptable', 'Accept admits none of application/json, application/vnd.l2o.safetensors'],
  408: ['request_timeout', 'the body did not arrive within 20000 ms'],
  422: ['non_finite_gradient', 'grads[17] is NaN; check the loss before stepping'],
  429: ['rate_limited', 'this client has 8 steps in flight; retry after the Retry-After header'],
  503: ['overloaded', 'the server has 256 steps in flight; retry after the Retry-After header'],
}

/** The problem+json example for an error status. */
export function problemExample(status: number): Record<string, unknown> | undefined {
  const sample = problemSamples[status]
  return sample && { ...problemBody(new ApiError(sample[0], sample[1]), 'req_0123abcd') }
}
