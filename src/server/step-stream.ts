/**
 * The binary step's answer, pipelined: the optimizer works through the sent state as the body
 * arrives, and the answer (safetensors-out.ts: header, state rows, then the updates) starts once the
 * whole body is in and every chunk is computed and checked finite, so a 200 is never followed by a
 * refusal. With an F32 state the rows are the body's own buffer, stepped in place: nothing is copied.
 */
import type { Context } from 'hono'
import { metadataKeys, type StateDtype, safetensorsMediaType } from '../contract'
import { bytesOf, sliceRows, type Tensor } from '../safetensors'
import { readyThrough } from './body'
import { ChunkQueue } from './chunk-queue'
import { assertFiniteState, computeOf, stepChunks, stepHeaders } from './compute'
import type { BodyReader } from './deps'
import type { AppEnv } from './env'
import { describeError } from './errors'
import type { Target } from './registry/resolve'
import { stepAnswerLayout } from './safetensors-out'

/**
 * Steps `grads` (checked: finite, and already in) with `sentState` (its shape checked; its values
 * are checked here as they arrive) and answers with a stream of the new state in `dtype` and the
 * updates. A refusal found before the whole body is in is thrown, so it becomes a problem answer.
 */
export async function streamStepAnswer(
  c: Context<AppEnv>,
  target: Target,
  grads: Float32Array,
  sentState: Tensor | undefined,
  body: BodyReader,
  dtype: StateDtype,
): Promise<Response> {
  const n = grads.length
  const s = target.stateSize
  const layout = stepAnswerLayout(n, s, dtype, {
    [metadataKeys.optimizer]: target.label,
    [metadataKeys.digest]: target.digest,
  })
  const updates = new Float32Array(n)
  const chunks = new ChunkQueue()
  chunks.push(layout.header)
  // Coordinates whose sent state is checked finite. Each chunk's state is checked just before its
  // step overwrites it in place (the body buffer is this request's own), the rest once the body is in.
  let checked = 0
  const computing = stepChunks(computeOf(c), target, grads, sentState, dtype, {
    before: async (begin, end) => {
      if (sentState !== undefined) {
        await readyThrough(body, sentState.data.subarray(0, end * s))
        if (chunks.stopped) return false
        assertFiniteState(sliceRows(sentState, s, 0, end), s, begin, body.firstNonFinite)
        checked = end
      }
      return !chunks.stopped
    },
    inPlace: true,
    scan: body.firstNonFinite,
    turns: c.get('ticket'),
    after: (begin, _end, chunkUpdates, next) => {
      updates.set(chunkUpdates, begin)
      if (next.data.byteLength > 0) chunks.push(bytesOf(next))
    },
  }).then(
    () => {
      chunks.push(bytesOf(updates))
      chunks.close()
    },
    (error: unknown) => chunks.fail(error),
  )

  // Nothing is answered before the whole body is in and checked, and every result is computed and
  // checked (stepChunks refuses a non-finite one): a refusal is a clean problem, never a cut stream.
  try {
    await body.ready(body.bytes.length)
    if (sentState !== undefined) assertFiniteState(sentState, s, checked, body.firstNonFinite)
  } catch (error) {
    chunks.stop()
    await computing
    throw error
  }
  await computing
  if (chunks.failure !== undefined) throw chunks.failure.error

  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Uint8Array | undefined
      try {
        chunk = await chunks.pull()
      } catch (error) {
        c.get('deps').log({ level: 'error', message: describeError(error), requestId: c.get('requestId') })
        controller.error(error)
        return
      }
      if (chunk === undefined) controller.close()
      else controller.enqueue(chunk)
    },
    cancel() {
      chunks.stop()
    },
  })
  return new Response(stream, {
    headers: {
      'content-type': safetensorsMediaType,
      'content-length': String(layout.totalBytes),
      ...stepHeaders(target),
    },
  })
}
