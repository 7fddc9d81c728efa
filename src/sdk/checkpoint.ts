/**
 * A run checkpoint: one safetensors file whose `__metadata__` says which pinned optimizer, mode and
 * step the run is at, and (stateless mode) whose `state` tensor is the optimizer state [N, S] in its
 * own dtype, bit for bit. The same bytes load in any runtime.
 */
import { digestPattern, type StateDtype, stateDtypes } from '../contract'
import { decode, encode, SafetensorsError, type Tensor } from '../safetensors'
import { SdkError } from './errors'

/** The `format` value of checkpoints this SDK writes and reads. */
export const checkpointFormat = 'l2o-run/1'

/** Everything a run needs to resume. */
export interface RunCheckpoint {
  mode: 'stateless' | 'session'
  /** The reference the run started from, e.g. `l2o-mnist@stable` (informative). */
  reference: string
  /** The pin, `name@sha256:<hex>`. */
  optimizer: string
  digest: string
  hyperparameters?: Record<string, number>
  stateDtype: StateDtype
  /** Unset when the run was saved before its first step. */
  numParams?: number
  /** Completed steps. */
  step: number
  /** Session mode: the server-side session. */
  sessionId?: string
  /** Stateless mode after the first step: the state [numParams, S]. */
  state?: Tensor
  /** Caller-owned strings saved alongside (e.g. the tf.js variable layout). */
  extra?: Record<string, string>
}

const extraPrefix = 'extra.'

/** Encodes a checkpoint as safetensors bytes. */
export function encodeCheckpoint(c: RunCheckpoint): Uint8Array {
  const metadata: Record<string, string> = {
    format: checkpointFormat,
    mode: c.mode,
    reference: c.reference,
    optimizer: c.optimizer,
    digest: c.digest,
    state_dtype: c.stateDtype,
    step: String(c.step),
  }
  if (c.hyperparameters) metadata.hyperparameters = JSON.stringify(c.hyperparameters)
  if (c.numParams !== undefined) metadata.num_params = String(c.numParams)
  if (c.sessionId !== undefined) metadata.session_id = c.sessionId
  for (const [k, v] of Object.entries(c.extra ?? {})) metadata[extraPrefix + k] = v
  return encode(c.state ? { state: c.state } : {}, metadata)
}

/** Decodes checkpoint bytes, checking that they describe a consistent run. */
export function decodeCheckpoint(bytes: Uint8Array): RunCheckpoint {
  let file: ReturnType<typeof decode>
  try {
    file = decode(bytes)
  } catch (error) {
    if (error instanceof SafetensorsError) throw new SdkError(`not an l2o checkpoint: ${error.message}`)
    throw error
  }
  const m = file.metadata ?? {}
  const bad = (why: string): never => {
    throw new SdkError(`invalid l2o checkpoint: ${why}`)
  }
  if (m.format !== checkpointFormat)
    bad(`format is ${JSON.stringify(m.format)}, expected ${checkpointFormat}`)
  const mode = m.mode
  if (mode !== 'stateless' && mode !== 'session') return bad(`unknown mode ${JSON.stringify(mode)}`)
  if (!m.digest || !digestPattern.test(m.digest)) bad('digest missing or malformed')
  if (!m.optimizer?.endsWith(`@${m.digest}`)) bad('optimizer is not pinned to the digest')
  const stateDtype = m.state_dtype as StateDtype
  if (!stateDtypes.includes(stateDtype)) bad(`unknown state dtype ${JSON.stringify(m.state_dtype)}`)
  const step = Number(m.step)
  if (!Number.isSafeInteger(step) || step < 0) bad(`step ${JSON.stringify(m.step)} is not a count`)
  const numParams = m.num_params === undefined ? undefined : Number(m.num_params)
  if (numParams !== undefined && (!Number.isSafeInteger(numParams) || numParams < 1))
    bad('num_params invalid')
  const state = file.tensors.get('state')
  if (mode === 'session' && !m.session_id) bad('a session checkpoint needs session_id')
  if (mode === 'stateless' && step > 0) {
    if (!state || numParams === undefined) return bad('a stateless checkpoint after step 0 needs its state')
    if (state.dtype !== stateDtype || state.shape.length !== 2 || state.shape[0] !== numParams) {
      bad(`state is ${state.dtype} [${state.shape.join(', ')}], expected ${stateDtype} [${numParams}, S]`)
    }
  }
  const extra: Record<string, string> = {}
  for (const [k, v] of Object.entries(m))
    if (k.startsWith(extraPrefix)) extra[k.slice(extraPrefix.length)] = v
  let hyperparameters: Record<string, number> | undefined
  if (m.hyperparameters !== undefined) {
    try {
      hyperparameters = JSON.parse(m.hyperparameters) as Record<string, number>
    } catch {
      bad('hyperparameters is not JSON')
    }
  }
  return {
    mode,
    reference: m.reference ?? m.optimizer,
    optimizer: m.optimizer,
    digest: m.digest,
    hyperparameters,
    stateDtype,
    numParams,
    step,
    sessionId: m.session_id,
    // Copy: decoded tensors alias `bytes`, which the caller may reuse.
    state: mode === 'stateless' && step > 0 && state ? copyTensor(state) : undefined,
    extra,
  }
}

const copyTensor = (t: Tensor): Tensor =>
  t.dtype === 'F32'
    ? { dtype: 'F32', shape: [...t.shape], data: t.data.slice() }
    : { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() }
