/**
 * Request bodies on the Node runtime: read from the socket straight into one buffer of their
 * Content-Length, usable while they arrive, and large ones reused from one request to the next.
 */
import type { IncomingMessage } from 'node:http'
import { bodyTooLarge } from '../server/body'
import type { BodyReader } from '../server/deps'
import { ApiError } from '../server/errors'
import { allocateBytes } from './large-buffer'
import { wasmFiniteScan } from './wasm-finite'

/** A buffer for a body of known length, and optionally a fast finite scan of views into it. */
export interface BodyBuffer {
  bytes: Uint8Array
  firstNonFinite?: (values: Float32Array) => number
}

interface PooledMemory {
  memory: WebAssembly.Memory
  firstNonFinite?: (values: Float32Array) => number
}

/**
 * Buffers for large request bodies, reused from one request to the next: WebAssembly.Memory
 * objects (their own mmap'd pages, grown when needed) instead of a fresh 21 MB allocation per
 * step, which would cost page faults, fragment malloc's heap and wait for a full GC to be freed:
 * with many large steps in flight, such garbage grew the server past 800 MB. Released memories
 * wait for the next bodies, as long as all the pool's memories (in use and spare) stay within
 * `maxPoolBytes`. Each memory comes with a wasm SIMD finite scan of its own (wasm-finite.ts).
 */
export class BodyBuffers {
  private readonly spares: PooledMemory[] = []
  private pooledBytes = 0

  constructor(readonly maxPoolBytes = Number.POSITIVE_INFINITY) {}

  /** Bytes of the pool's memories, in use or spare. */
  get poolBytes(): number {
    return this.pooledBytes
  }

  /** A buffer of `length` bytes (contents undefined) and the function that gives it back. */
  acquire(length: number): BodyBuffer & { release: () => void } {
    if (length < 1 << 20) return { bytes: new Uint8Array(length), release: () => {} }
    const pages = Math.ceil(length / 65_536)
    // The smallest spare that fits, else the largest one grown, else a new memory.
    this.spares.sort((a, b) => a.memory.buffer.byteLength - b.memory.buffer.byteLength)
    const fits = this.spares.findIndex((s) => s.memory.buffer.byteLength >= length)
    let leased: PooledMemory
    if (fits >= 0) {
      leased = this.spares.splice(fits, 1)[0]
    } else if (this.spares.length > 0) {
      leased = this.spares.pop() as PooledMemory
      const before = leased.memory.buffer.byteLength
      leased.memory.grow(pages - before / 65_536)
      this.pooledBytes += leased.memory.buffer.byteLength - before
    } else {
      const memory = new WebAssembly.Memory({ initial: pages })
      leased = { memory, firstNonFinite: wasmFiniteScan(memory) }
      this.pooledBytes += memory.buffer.byteLength
    }
    let released = false
    return {
      bytes: new Uint8Array(leased.memory.buffer, 0, length),
      firstNonFinite: leased.firstNonFinite,
      release: () => {
        if (released) return
        released = true
        // Past the pool's size, the memory is left to the garbage collector.
        if (this.pooledBytes <= this.maxPoolBytes) this.spares.push(leased)
        else this.pooledBytes -= leased.memory.buffer.byteLength
      },
    }
  }
}

/** How a body may be read: where its buffer comes from, what it may cost, and until when. */
export interface IncomingOptions {
  /** A buffer for a body of `length` bytes (default: allocateBytes). */
  allocate?: (length: number) => BodyBuffer
  /**
   * Called with the bytes a body will hold before any is read (Content-Length, or `limit` for a
   * body without one); may throw (e.g. 503 when the bodies in flight would exceed their budget).
   */
  reserve?: (bytes: number) => void
  /** When the whole body must be in (epoch ms): past it, 408 request_timeout. */
  deadline?: number
}

/**
 * A request body read from the socket into one buffer of its Content-Length from `allocate` (one
 * copy per chunk, no concatenation), usable while it arrives. Refuses more than `limit` bytes: from
 * Content-Length before reading, or while reading a body without one (which is read whole first);
 * and a body that is not in by the deadline.
 */
export async function openIncoming(
  incoming: IncomingMessage,
  limit: number,
  options: IncomingOptions = {},
): Promise<BodyReader> {
  const {
    allocate = (length: number): BodyBuffer => ({ bytes: allocateBytes(length) }),
    reserve,
    deadline,
  } = options
  const header = incoming.headers['content-length']
  const declared = header === undefined ? Number.NaN : Number(header)
  if (!Number.isSafeInteger(declared) || declared < 0) {
    reserve?.(limit)
    const bytes = await readUnsized(incoming, limit, deadline)
    return { bytes, ready: () => Promise.resolve() }
  }
  if (declared > limit) throw bodyTooLarge(String(declared), limit)
  reserve?.(declared)
  const { bytes, firstNonFinite } = allocate(declared)
  let received = 0
  let failure: Error | undefined
  const waiting: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  const settle = () => {
    for (let i = waiting.length - 1; i >= 0; i--) {
      const w = waiting[i]
      if (w.n <= received) w.resolve()
      else if (failure !== undefined) w.reject(failure)
      else continue
      waiting.splice(i, 1)
    }
  }
  const fail = (error: Error) => {
    failure ??= error
    incoming.off('data', onData)
    clearTimeout(timer)
    settle()
  }
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > declared)
      return fail(new ApiError('invalid_request', 'the body is longer than its Content-Length'))
    bytes.set(chunk, received)
    received += chunk.length
    if (received === declared) clearTimeout(timer)
    settle()
  }
  const timer =
    deadline === undefined || declared === 0
      ? undefined
      : setTimeout(() => fail(bodyTimedOut(deadline)), Math.max(0, deadline - Date.now()))
  incoming.on('data', onData)
  incoming.once('error', () =>
    fail(new ApiError('invalid_request', 'the connection failed before the whole body arrived')),
  )
  incoming.once('end', () => {
    if (received < declared)
      fail(new ApiError('invalid_request', 'the body is shorter than its Content-Length'))
  })
  incoming.once('close', () => {
    if (received < declared)
      fail(new ApiError('invalid_request', 'the connection closed before the whole body arrived'))
  })
  return {
    bytes,
    firstNonFinite,
    ready: (n) => {
      const needed = Math.min(n, declared)
      if (needed <= received) return Promise.resolve()
      if (failure !== undefined) return Promise.reject(failure)
      return new Promise<void>((resolve, reject) => waiting.push({ n: needed, resolve, reject }))
    },
  }
}

/** The 408 of a body not in by its deadline. */
export function bodyTimedOut(deadline: number): ApiError {
  return new ApiError(
    'request_timeout',
    'the body did not arrive in time; send it without pausing (or send a smaller one)',
    { deadline: new Date(deadline).toISOString() },
    { Connection: 'close' },
  )
}

function readUnsized(incoming: IncomingMessage, limit: number, deadline?: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    const stop = (error: Error) => {
      incoming.off('data', onData)
      clearTimeout(timer)
      reject(error)
    }
    const onData = (chunk: Buffer) => {
      received += chunk.length
      if (received > limit) {
        stop(bodyTooLarge(`more than ${limit}`, limit))
        return
      }
      chunks.push(chunk)
    }
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(() => stop(bodyTimedOut(deadline)), Math.max(0, deadline - Date.now()))
    incoming.on('data', onData)
    incoming.once('error', stop)
    incoming.once('end', () => {
      clearTimeout(timer)
      const bytes = allocateBytes(received)
      let at = 0
      for (const chunk of chunks) {
        bytes.set(chunk, at)
        at += chunk.length
      }
      resolve(bytes)
    })
  })
}
