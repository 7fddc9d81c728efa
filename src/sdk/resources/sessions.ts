/** Server-held state (DESIGN §6): create a session, step its shards, read it, delete it. */
import {
  type CreateSessionRequest,
  routes,
  type Session,
  safetensorsMediaType,
  sessionSchema,
  tensorNames,
} from '../../contract'
import { encode } from '../../safetensors'
import { answerDigest, decodeStepResponse } from '../binary'
import { DigestMismatchError, StepConflictError } from '../errors'
import type { Transport } from '../http'
import { parseBody } from './parse'

/** What one session step returns. */
export interface SessionStepResult {
  updates: Float32Array
  /** The digest the answer says it was computed under, when it says. */
  digest?: string
}

/** Options of one session step. */
export interface SessionStepOptions {
  /** When set, an answer under another digest is a DigestMismatchError. */
  expectDigest?: string
  signal?: AbortSignal
}

/** `/v1/sessions`. */
export class SessionsResource {
  constructor(private readonly transport: Transport) {}

  /** Creates a session: the server splits `numParams` coordinates into shards and keeps their state. */
  async create(request: CreateSessionRequest, signal?: AbortSignal): Promise<Session> {
    const { data, response } = await this.transport.json({
      method: 'POST',
      path: routes.sessions,
      json: request,
      signal,
    })
    return parseBody(sessionSchema, data, response)
  }

  /** Reads a session: its digest and each shard's step count. */
  async get(id: string, signal?: AbortSignal): Promise<Session> {
    const { data, response } = await this.transport.json({ method: 'GET', path: routes.session(id), signal })
    return parseBody(sessionSchema, data, response)
  }

  /** Deletes a session and its state. */
  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.transport.request({ method: 'DELETE', path: routes.session(id), signal })
  }

  /**
   * Sends step `step` (previous + 1) of one shard and returns its updates. Retrying is safe: the
   * server applies step t of a shard once and answers a repeat of t with the stored updates. A 409
   * `step_conflict` to a *retry* can mean the first attempt is still being applied, so it is
   * retried too; to a first attempt it means the step is out of order and is thrown.
   */
  async step(
    id: string,
    shard: number,
    step: number,
    grads: Float32Array,
    options: SessionStepOptions = {},
  ): Promise<SessionStepResult> {
    const path = routes.sessionStep(id, shard, step)
    const response = await this.transport.request({
      method: 'POST',
      path,
      body: encode({ [tensorNames.grads]: { dtype: 'F32', shape: [grads.length], data: grads } }),
      contentType: safetensorsMediaType,
      accept: safetensorsMediaType,
      signal: options.signal,
      retryIf: (error, attempt) => attempt > 0 && error instanceof StepConflictError,
    })
    const body = decodeStepResponse(response.body, { numParams: grads.length, where: `POST ${path}` })
    const digest = answerDigest(body.metadata, response.headers)
    if (options.expectDigest !== undefined && digest !== undefined && digest !== options.expectDigest) {
      throw new DigestMismatchError({
        status: 409,
        code: 'digest_mismatch',
        detail: `session ${id} answered under ${digest}, but this run is pinned to ${options.expectDigest}`,
        method: 'POST',
        url: path,
      })
    }
    return { updates: body.updates, digest }
  }
}
