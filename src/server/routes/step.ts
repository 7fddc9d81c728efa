/** POST /v1/step: the stateless step, binary (safetensors) or JSON (DESIGN §5). */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import {
  digestPattern,
  type JsonStepResponse,
  jsonStepRequestSchema,
  metadataKeys,
  routes,
  type StateDtype,
  safetensorsMediaType,
  tensorNames,
} from '../../contract'
import { fromFloat32, sliceRows, type Tensor, toFloat32 } from '../../safetensors'
import { requireKey } from '../auth'
import { bodyKindOf, decodeArriving, jsonNumbers, openBody, parseJsonWithArrays, readBody } from '../body'
import {
  assertCoordinates,
  assertFinite,
  assertFiniteState,
  coordinateLimit,
  maxBinaryStepBytes,
  maxJsonBodyBytes,
  newStepOutput,
  parseStateDtype,
  runStep,
  stepChunks,
  stepHeaders,
} from '../compute'
import type { BodyReader } from '../deps'
import type { AppEnv } from '../env'
import { ApiError, describeError } from '../errors'
import { resolveReference, type Target } from '../registry/resolve'
import { stepAnswerLayout } from '../safetensors-out'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerStep(app: OpenAPIHono<AppEnv<any>>): void {
  app.post(routes.step, requireKey(), async (c) => {
    const kind = bodyKindOf(c.req.raw, ['binary', 'json'])
    if (kind === 'json') return jsonStep(c, await readBody(c, maxJsonBodyBytes))
    return binaryStep(c, await openBody(c, maxBinaryStepBytes))
  })
}

/**
 * The binary step, pipelined: every check that needs only the header and the gradients runs
 * first; then the optimizer works through the state as it arrives; the answer starts once the
 * whole body is in and checked, and streams each chunk's state rows as they are computed.
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

  const target = await resolveReference(c.get('deps').db, reference, hyperparameters)
  checkDigest(target, digest)
  const n = grads.length
  const s = target.stateSize
  assertCoordinates(n, coordinateLimit(s, deps.maxCoordinatesPerRequest))
  if (sentState !== undefined) {
    const [rows, cols] = sentState.shape
    if (sentState.shape.length !== 2 || rows !== n || cols !== s) {
      throw new ApiError(
        'shape_mismatch',
        `state has shape [${sentState.shape.join(', ')}]; ${target.label} needs [${n}, ${s}] for ${n} gradients`,
      )
    }
  }
  await body.ready(endIn(body.bytes, grads))
  assertFinite(grads, body.firstNonFinite)

  const layout = stepAnswerLayout(n, s, outDtype, {
    [metadataKeys.optimizer]: target.label,
    [metadataKeys.digest]: target.digest,
  })
  const updates = new Float32Array(n)
  const rows: Uint8Array[] = []
  // Coordinates whose sent state is checked finite. Each chunk's state is checked just before its
  // step overwrites it in place (the body buffer is this request's own), the rest once the body is in.
  let checked = 0
  let finished = false
  let failure: unknown
  let stopped = false
  let wake: (() => void) | undefined
  const computing = stepChunks(c, target, grads, sentState, outDtype, {
    before: async (begin, end) => {
      if (sentState !== undefined) {
        await body.ready(endIn(body.bytes, sentState.data.subarray(0, end * s)))
        if (stopped) return false
        assertFiniteState(sliceRows(sentState, s, 0, end), s, begin, body.firstNonFinite)
        checked = end
      }
      return !stopped
    },
    inPlace: true,
    after: (begin, _end, chunkUpdates, next) => {
      updates.set(chunkUpdates, begin)
      if (next.data.byteLength > 0)
        rows.push(new Uint8Array(next.data.buffer, next.data.byteOffset, next.data.byteLength))
      wake?.()
    },
  })
    .then(
      () => {
        finished = true
      },
      (error: unknown) => {
        failure = error
      },
    )
    .finally(() => wake?.())

  // Nothing is answered before the whole body is in and checked (a refusal is a clean problem).
  try {
    await body.ready(body.bytes.length)
    if (sentState !== undefined) assertFiniteState(sentState, s, checked, body.firstNonFinite)
  } catch (error) {
    stopped = true
    await computing
    throw error
  }
  if (failure !== undefined) throw failure

  let headerSent = false
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true
        controller.enqueue(layout.header)
        return
      }
      while (rows.length === 0 && !finished && failure === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
      if (rows.length > 0) {
        controller.enqueue(rows.shift()!)
      } else if (failure !== undefined) {
        deps.log({ level: 'error', message: describeError(failure), requestId: c.get('requestId') })
        controller.error(failure)
      } else {
        controller.enqueue(new Uint8Array(updates.buffer))
        controller.close()
      }
    },
    cancel() {
      stopped = true
    },
  })
  return new Response(stream, {
    headers: {
      'content-type': safetensorsMediaType,
      'content-length': String(layout.totalBytes),
      ...stepHeaders(target, deprecatedAt(target)),
    },
  })
}

/** The byte offset in `bytes` just past a view into the same buffer. */
function endIn(bytes: Uint8Array, view: ArrayBufferView): number {
  return view.byteOffset + view.byteLength - bytes.byteOffset
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
  const target = await resolveReference(deps.db, request.optimizer, request.hyperparameters)
  checkDigest(target, digest)
  assertCoordinates(n, coordinateLimit(target.stateSize, deps.maxCoordinatesPerRequest))
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
  await runStep(c, target, grads, state, out)
  // JsonStepResponse, written without arrays of 80,000 boxed numbers.
  const head: Omit<JsonStepResponse, 'updates' | 'state'> = {
    optimizer: target.label,
    digest: target.digest,
    numParams: n,
    stateSize: target.stateSize,
  }
  const json = `${JSON.stringify(head).slice(0, -1)},"updates":${jsonNumbers(out.updates)},"state":${jsonNumbers(toFloat32(out.state))}}`
  return c.body(json, 200, {
    'content-type': 'application/json',
    ...stepHeaders(target, deprecatedAt(target)),
  })
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

/** Checks the digest field's form; a state without one is refused, since it is bound to its digest. */
export function checkDigestField(digest: string | undefined, hasState: boolean): string | undefined {
  if (digest !== undefined && !digestPattern.test(digest)) {
    throw new ApiError(
      'invalid_request',
      `digest '${digest.slice(0, 80)}' is not sha256: followed by 64 hex digits`,
    )
  }
  if (digest === undefined && hasState) {
    throw new ApiError(
      'invalid_request',
      `a state must come with the digest it was made under (the '${metadataKeys.digest}' the step that returned it named)`,
    )
  }
  return digest
}

/** 409 when the request is bound to another digest than the reference resolves to. */
export function checkDigest(target: Target, digest: string | undefined): void {
  if (digest !== undefined && digest !== target.digest) {
    throw new ApiError(
      'digest_mismatch',
      `the request is bound to ${digest}, but ${target.label} resolves to ${target.digest}; reference the optimizer by that digest (name@${digest}) or start from a fresh state`,
      { expectedDigest: digest, resolvedDigest: target.digest },
    )
  }
}

function deprecatedAt(target: Target): string | null {
  return target.kind === 'learned' ? target.deprecatedAt : null
}
