/**
 * The bodies of a session step (DESIGN §6): the gradients of one shard in, its updates out. A
 * binary body may repeat the step and the digest in its metadata; both must agree.
 */
import type { Context } from 'hono'
import {
  type JsonSessionStepResponse,
  jsonSessionStepRequestSchema,
  metadataKeys,
  safetensorsMediaType,
  tensorNames,
} from '../../contract'
import { encode, type Tensor } from '../../safetensors'
import { type BodyKind, decodeSafetensors, jsonNumbers, parseJsonWithArrays } from '../body'
import { stepHeaders } from '../compute'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import type { Target } from '../registry/resolve'
import type { SessionRecord } from './store'

/** The gradients a session step body carries for step `t` (their count is checked by the caller). */
export function sessionStepGrads(
  kind: BodyKind,
  bytes: Uint8Array,
  session: SessionRecord,
  t: number,
): Float32Array {
  return kind === 'binary' ? binaryGrads(bytes, session, t) : jsonGrads(bytes)
}

/** The answer to a session step: its updates, as JSON or safetensors like the request. */
export function sessionStepAnswer(
  c: Context<AppEnv>,
  kind: BodyKind,
  target: Target,
  t: number,
  updates: Float32Array,
): Response {
  const headers = stepHeaders(target)
  if (kind === 'json') {
    // JsonSessionStepResponse, written without an array of boxed numbers.
    const head: Omit<JsonSessionStepResponse, 'updates'> = { step: t, digest: target.digest }
    const json = `${JSON.stringify(head).slice(0, -1)},"updates":${jsonNumbers(updates)}}`
    return c.body(json, 200, { 'content-type': 'application/json', ...headers })
  }
  const body = encode(
    { [tensorNames.updates]: { dtype: 'F32', shape: [updates.length], data: updates } },
    { [metadataKeys.digest]: target.digest, [metadataKeys.step]: String(t) },
  )
  return new Response(body, { headers: { 'content-type': safetensorsMediaType, ...headers } })
}

function binaryGrads(bytes: Uint8Array, session: SessionRecord, t: number): Float32Array {
  const file = decodeSafetensors(bytes, 1)
  const meta = file.metadata ?? {}
  const grads: Tensor | undefined = file.tensors.get(tensorNames.grads)
  if (grads === undefined) {
    const other = [...file.tensors.keys()][0]
    throw new ApiError(
      other === undefined ? 'shape_mismatch' : 'invalid_safetensors',
      other === undefined
        ? `the body has no tensor '${tensorNames.grads}': send grads as F32 [shard length]`
        : `unexpected tensor '${other.slice(0, 64)}': a session step sends only grads (the server holds the state)`,
    )
  }
  if (grads.dtype !== 'F32' || grads.shape.length !== 1) {
    throw new ApiError(
      'shape_mismatch',
      `grads is ${grads.dtype} [${grads.shape.join(', ')}]; send F32 [shard length]`,
    )
  }
  const step = meta[metadataKeys.step]
  if (step !== undefined && step !== String(t)) {
    throw new ApiError(
      'invalid_request',
      `metadata step '${step.slice(0, 20)}' disagrees with step ${t} in the path`,
    )
  }
  const digest = meta[metadataKeys.digest]
  if (digest !== undefined && digest !== session.digest) {
    throw new ApiError(
      'digest_mismatch',
      `this session runs under ${session.digest}, not ${digest.slice(0, 80)}; start a new session for another optimizer`,
      { expectedDigest: digest, resolvedDigest: session.digest },
    )
  }
  return grads.data
}

function jsonGrads(bytes: Uint8Array): Float32Array {
  const schema = jsonSessionStepRequestSchema.omit({ grads: true })
  return parseJsonWithArrays(bytes, schema, [{ name: 'grads', required: true }]).arrays.grads!
}
