/** Binary step bodies (DESIGN §5): safetensors framing with the contract's tensor and metadata names. */
import { headerNames, metadataKeys, type StateDtype, tensorNames } from '../contract'
import { decode, encode, SafetensorsError, type Tensor } from '../safetensors'
import { ProtocolError } from './errors'

/** A state as it travels: raw values in its dtype (F16/BF16 as 16-bit patterns), shape [N, S]. */
export type StateTensor = Tensor

/** What a binary stateless step request carries. */
export interface StepRequestBody {
  grads: Float32Array
  state?: StateTensor
  metadata: Record<string, string | undefined>
}

/** Encodes a step request: `grads` F32 [N], optional `state` [N, S], string metadata. */
export function encodeStepRequest(body: StepRequestBody): Uint8Array {
  const tensors: Record<string, Tensor> = {
    [tensorNames.grads]: { dtype: 'F32', shape: [body.grads.length], data: body.grads },
  }
  if (body.state) tensors[tensorNames.state] = body.state
  const metadata: Record<string, string> = {}
  for (const [k, v] of Object.entries(body.metadata)) if (v !== undefined) metadata[k] = v
  return encode(tensors, metadata)
}

/** A decoded step answer. */
export interface StepResponseBody {
  updates: Float32Array
  state?: StateTensor
  metadata: Record<string, string>
}

/** What the SDK requires of a step answer, checked before anything is used. */
export interface StepResponseExpectation {
  numParams: number
  /** When set, the answer must carry a state [numParams, stateSize] of this dtype. */
  state?: { stateSize: number; dtype: StateDtype }
  where: string
}

/** Decodes and checks a step answer; any surprise is a ProtocolError naming the request. */
export function decodeStepResponse(bytes: Uint8Array, expect: StepResponseExpectation): StepResponseBody {
  let file: ReturnType<typeof decode>
  try {
    file = decode(bytes)
  } catch (error) {
    if (error instanceof SafetensorsError) throw new ProtocolError(`${expect.where}: ${error.message}`)
    throw error
  }
  const updates = file.tensors.get(tensorNames.updates)
  if (updates?.dtype !== 'F32' || updates.data.length !== expect.numParams) {
    const got = updates ? `${updates.dtype} [${updates.shape.join(', ')}]` : 'none'
    throw new ProtocolError(`${expect.where}: expected updates F32 [${expect.numParams}], got ${got}`)
  }
  let state: StateTensor | undefined
  if (expect.state) {
    state = file.tensors.get(tensorNames.state)
    const { stateSize, dtype } = expect.state
    if (!state || state.dtype !== dtype || state.data.length !== expect.numParams * stateSize) {
      const got = state ? `${state.dtype} [${state.shape.join(', ')}]` : 'none'
      throw new ProtocolError(
        `${expect.where}: expected state ${dtype} [${expect.numParams}, ${stateSize}], got ${got}`,
      )
    }
  }
  return { updates: updates.data, state, metadata: file.metadata ?? {} }
}

/** The digest an answer says it was computed under: metadata first, then the header. */
export function answerDigest(metadata: Record<string, string>, headers: Headers): string | undefined {
  return metadata[metadataKeys.digest] ?? headers.get(headerNames.digest) ?? undefined
}
