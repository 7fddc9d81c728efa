/** POST /v1/step: the stateless step, binary (safetensors) or JSON (DESIGN §5). */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import {
  type JsonStepResponse,
  jsonStepRequestSchema,
  metadataKeys,
  routes,
  type StateDtype,
  tensorNames,
} from '../../contract'
import { fromFloat32, ITEMSIZE, type Tensor, toFloat32 } from '../../safetensors'
import { requireKey } from '../auth'
import {
  bodyKindOf,
  decodeArriving,
  jsonObjectStream,
  openBody,
  parseJsonWithArrays,
  readBody,
  readyThrough,
} from '../body'
import {
  assertCoordinates,
  assertFinite,
  assertFiniteState,
  computeOf,
  coordinateLimit,
  newStepOutput,
  parseStateDtype,
  runStep,
  stepHeaders,
} from '../compute'
import { admitCompute } from '../compute-queue'
import type { BodyReader } from '../deps'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { checkDigestField, resolveBound } from '../registry/resolve'
import { streamStepAnswer } from '../step-stream'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerStep(app: OpenAPIHono<AppEnv<any>>): void {
  app.post(routes.step, requireKey(), admitCompute(), async (c) => {
    const kind = bodyKindOf(c.req.raw, ['binary', 'json'])
    const deps = c.get('deps')
    if (kind === 'json') return jsonStep(c, await readBody(c, deps.maxJsonBodyBytes))
    return binaryStep(c, await openBody(c, deps.maxBinaryStepBytes))
  })
}

/**
 * The binary step: every check that needs only the header and the gradients, as soon as they are
 * in; then the answer streams (step-stream.ts) while the state still arrives.
 */
async function binaryStep(c: Context<AppEnv>, body: BodyReader): Promise<Response> {
  const deps = c.get('deps')
  const file = await decodeArriving(body, 2)
  const meta = file.metadata ?? {}
  for (const name of file.tensors.keys()) {
    if (name !== tensorNames.grads && name !== tensorNames.state) {
      throw new ApiError(
        'invalid_safetensors',
        `unexpected tensor '${name.slice(0, 64)}': send grads and, optionally, state`,
      )
    }
  }
  const grads = gradsOf(file.tensors.get(tensorNames.grads))
  assertCoordinates(grads.length, deps.maxCoordinatesPerRequest)
  const reference = meta[metadataKeys.optimizer]
  if (reference === undefined) {
    throw new ApiError(
      'invalid_request',
      `__metadata__ needs '${metadataKeys.optimizer}': a reference such as l2o-mnist@stable`,
    )
  }
  const hyperparameters = parseHyperparameters(meta[metadataKeys.hyperparameters])
  const sentState: Tensor | undefined = file.tensors.get(tensorNames.state)
  const outDtype = parseStateDtype(meta[metadataKeys.stateDtype], sentState?.dtype ?? 'F32')
  const digest = checkDigestField(meta[metadataKeys.digest], sentState !== undefined)

  const target = await resolveBound(deps.db, reference, hyperparameters, digest)
  const n = grads.length
  const s = target.stateSize
  assertCoordinates(n, coordinateLimit(s, deps.maxCoordinatesPerRequest, deps.maxBinaryStepBytes))
  if (sentState !== undefined) {
    const [rows, cols] = sentState.shape
    if (sentState.shape.length !== 2 || rows !== n || cols !== s) {
      throw new ApiError(
        'shape_mismatch',
        `state has shape [${sentState.shape.join(', ')}]; ${target.label} needs [${n}, ${s}] for ${n} gradients`,
      )
    }
  }
  // An answer that cannot step the sent F32 state in place needs a state of its own: it counts
  // against the memory budget of the bodies in flight too.
  if (sentState?.dtype !== 'F32' || outDtype !== 'F32') body.reserve?.(n * s * ITEMSIZE[outDtype])
  await readyThrough(body, grads)
  assertFinite(grads, body.firstNonFinite)
  return streamStepAnswer(c, target, grads, sentState, body, outDtype)
}

async function jsonStep(c: Context<AppEnv>, bytes: Uint8Array): Promise<Response> {
  const deps = c.get('deps')
  const { fields: request, arrays } = parseJsonWithArrays(bytes, jsonStepFieldsSchema, [
    { name: 'grads', required: true },
    { name: 'state', required: false },
  ])
  const grads = arrays.grads!
  const n = grads.length
  assertCoordinates(n, deps.maxCoordinatesPerRequest)
  const digest = checkDigestField(request.digest, arrays.state !== undefined)
  const target = await resolveBound(deps.db, request.optimizer, request.hyperparameters, digest)
  assertCoordinates(
    n,
    coordinateLimit(target.stateSize, deps.maxCoordinatesPerRequest, deps.maxBinaryStepBytes),
  )
  if (arrays.state !== undefined && arrays.state.length !== n * target.stateSize) {
    throw new ApiError(
      'shape_mismatch',
      `state has ${arrays.state.length} numbers; ${target.label} needs ${n} × ${target.stateSize} = ${n * target.stateSize} (flat, row-major) for ${n} gradients`,
    )
  }
  assertFinite(grads)
  const dtype: StateDtype = request.stateDtype ?? 'F32'
  // The state travels in `dtype` precision: round what comes in the same way binary would.
  const state = arrays.state === undefined ? undefined : fromFloat32(dtype, arrays.state)
  if (state !== undefined) assertFiniteState(state, target.stateSize)

  const out = newStepOutput(n, target.stateSize, dtype)
  await runStep(computeOf(c), target, grads, state, out, c.get('ticket'))
  // JsonStepResponse, written without arrays of 80,000 boxed numbers, a piece at a time.
  const head: Omit<JsonStepResponse, 'updates' | 'state'> = {
    optimizer: target.label,
    digest: target.digest,
    numParams: n,
    stateSize: target.stateSize,
  }
  const answer: [string, Float32Array][] = [
    ['updates', out.updates],
    ['state', toFloat32(out.state)],
  ]
  const body = jsonObjectStream(head, answer, () => c.get('compute').yieldToEventLoop())
  return c.body(body, 200, { 'content-type': 'application/json', ...stepHeaders(target) })
}

// The contract's JSON step body, less the number arrays that parseJsonWithArrays reads.
const jsonStepFieldsSchema = jsonStepRequestSchema.omit({ grads: true, state: true })

function gradsOf(tensor: Tensor | undefined): Float32Array {
  if (tensor === undefined) {
    throw new ApiError(
      'shape_mismatch',
      `the body has no tensor '${tensorNames.grads}': send grads as F32 [N]`,
    )
  }
  if (tensor.dtype !== 'F32' || tensor.shape.length !== 1 || tensor.shape[0] < 1) {
    throw new ApiError(
      'shape_mismatch',
      `grads is ${tensor.dtype} [${tensor.shape.join(', ')}]; send F32 [N] with N ≥ 1 (flatten the parameters)`,
    )
  }
  return tensor.data as Float32Array
}

function parseHyperparameters(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new ApiError(
      'invalid_hyperparameters',
      `metadata '${metadataKeys.hyperparameters}' is not JSON; send e.g. {"learningRate":0.01}`,
    )
  }
}
