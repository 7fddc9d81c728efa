/**
 * l2o SDK: learned optimizers as a service, from any fetch-capable runtime (Node, browsers, Workers).
 * tf.js training loops use the `l2o/tf` entry (src/sdk/tf.ts).
 *
 * This file is the public API: what it exports is what users get. Every other module of the SDK is
 * internal (package.json's `exports` lets nothing else be imported from outside) and may change in
 * any release; tests import internals from their own modules.
 *
 * @example
 * import { L2oClient } from 'l2o'
 * const l2o = new L2oClient({ baseUrl: 'http://127.0.0.1:8787', apiKey })
 * const opt = await l2o.remoteOptimizer({ optimizer: 'l2o-mnist@1.1.0', mode: 'stateless' })
 * const updates = await opt.step(grads) // θ ← θ + updates
 */
export type {
  Architecture,
  OptimizerDetail,
  OptimizerSummary,
  Resolved,
  Session,
  StateDtype,
  StepRun,
} from '../contract'
export { formatReference, type ProblemCode, parseReference, type Reference } from '../contract'
export type { StateTensor } from './binary'
export { checkpointFormat, decodeCheckpoint, encodeCheckpoint, type RunCheckpoint } from './checkpoint'
export { type ClientOptions, L2oClient } from './client'
export {
  ApiError,
  type ApiErrorInit,
  AuthError,
  ConflictError,
  ConnectionError,
  DigestMismatchError,
  NotFoundError,
  ProtocolError,
  RateLimitError,
  SdkError,
  ServerError,
  StepConflictError,
  TimeoutError,
  ValidationError,
} from './errors'
export type { FetchLike } from './http'
export type { CoordinateRange } from './pool'
export {
  type LoadOptions,
  type RemoteMode,
  RemoteOptimizer,
  type RemoteOptimizerOptions,
} from './remote-optimizer'
export type { ResolvedOptimizer, ResolveOptions } from './resources/optimizers'
export type { SessionStepOptions, SessionStepResult } from './resources/sessions'
export type { StepRequest, StepResult } from './resources/steps'
export type { RetryOptions } from './retry'
