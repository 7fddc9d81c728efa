/** The stateless step (`POST /v1/step`, binary): grads and state in, updates and state out. */
import { metadataKeys, routes, type StateDtype, safetensorsMediaType } from '../../contract'
import { answerDigest, decodeStepResponse, encodeStepRequest, type StateTensor } from '../binary'
import { DigestMismatchError, ProtocolError } from '../errors'
import type { Transport } from '../http'

/** One stateless step request; at most the server's maxCoordinatesPerRequest coordinates. */
export interface StepRequest {
  /** A reference; a run sends its pin, `name@sha256:<hex>`. */
  optimizer: string
  /** The digest the state was made under (or the pin); the server answers 409 when it resolves otherwise. */
  digest?: string
  hyperparameters?: Record<string, number>
  grads: Float32Array
  /** The state [N, S] the previous step returned; absent for a fresh state. */
  state?: StateTensor
  /** Dtype of the returned state (default: the sent state's, or F32). */
  stateDtype?: StateDtype
  /** Floats of state per coordinate, to check the answer (from resolve). */
  stateSize: number
  signal?: AbortSignal
}

/** What one stateless step returns. */
export interface StepResult {
  updates: Float32Array
  state: StateTensor
  digest: string
}

/** Sends one binary stateless step. Retrying is safe: the step is a pure function of its body. */
export async function statelessStep(transport: Transport, request: StepRequest): Promise<StepResult> {
  const stateDtype = request.stateDtype ?? request.state?.dtype ?? 'F32'
  const response = await transport.request({
    method: 'POST',
    path: routes.step,
    body: encodeStepRequest({
      grads: request.grads,
      state: request.state,
      metadata: {
        [metadataKeys.optimizer]: request.optimizer,
        [metadataKeys.digest]: request.digest,
        [metadataKeys.hyperparameters]: request.hyperparameters
          ? JSON.stringify(request.hyperparameters)
          : undefined,
        [metadataKeys.stateDtype]: stateDtype,
      },
    }),
    contentType: safetensorsMediaType,
    accept: safetensorsMediaType,
    signal: request.signal,
  })
  const where = `POST ${routes.step}`
  const body = decodeStepResponse(response.body, {
    numParams: request.grads.length,
    state: { stateSize: request.stateSize, dtype: stateDtype },
    where,
  })
  const digest = answerDigest(body.metadata, response.headers)
  if (digest === undefined) throw new ProtocolError(`${where}: the answer names no digest`)
  if (request.digest !== undefined && digest !== request.digest) {
    throw new DigestMismatchError({
      status: 409,
      code: 'digest_mismatch',
      detail: `the server answered under ${digest}, but the request was pinned to ${request.digest}`,
      method: 'POST',
      url: routes.step,
    })
  }
  return { updates: body.updates, state: body.state!, digest }
}
