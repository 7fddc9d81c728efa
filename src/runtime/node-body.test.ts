import { describe, expect, it } from 'vitest'
import { BodyBuffers } from './node-body'

describe('BodyBuffers', () => {
  it('hands a released large buffer to the next request, grown when needed', () => {
    const buffers = new BodyBuffers()
    const first = buffers.acquire(3 << 20)
    first.bytes[0] = 42
    first.release()
    first.release()
    const second = buffers.acquire(2 << 20)
    expect(second.bytes.buffer).toBe(first.bytes.buffer)
    expect(second.bytes.length).toBe(2 << 20)
    second.release()
    const third = buffers.acquire(5 << 20)
    expect(third.bytes.length).toBe(5 << 20)
    expect(third.bytes.byteOffset).toBe(0)
  })

  it('gives concurrent requests separate buffers, and small bodies plain ones', () => {
    const buffers = new BodyBuffers()
    const a = buffers.acquire(2 << 20)
    const b = buffers.acquire(2 << 20)
    expect(a.bytes.buffer).not.toBe(b.bytes.buffer)
    const small = buffers.acquire(1000)
    expect(small.bytes.length).toBe(1000)
    expect(small.bytes.buffer).toBeInstanceOf(ArrayBuffer)
    expect(small.firstNonFinite).toBeUndefined()
  })

  it('gives a large buffer a finite scan of its own memory, kept when it is grown', () => {
    const buffers = new BodyBuffers()
    const first = buffers.acquire(2 << 20)
    const values = new Float32Array(first.bytes.buffer, 64, 1000)
    values[500] = Number.NaN
    expect(first.firstNonFinite?.(values)).toBe(500)
    first.release()
    const second = buffers.acquire(3 << 20)
    expect(second.firstNonFinite).toBe(first.firstNonFinite)
    const grown = new Float32Array(second.bytes.buffer, (2 << 20) + 4, 100)
    grown[99] = Number.NEGATIVE_INFINITY
    expect(second.firstNonFinite?.(grown)).toBe(99)
    expect(second.firstNonFinite?.(grown.subarray(0, 99))).toBe(-1)
  })

  it('keeps released memories for the next bodies while the pool is within its size', () => {
    const buffers = new BodyBuffers(5 << 20)
    const a = buffers.acquire(2 << 20)
    const b = buffers.acquire(2 << 20)
    const c = buffers.acquire(2 << 20)
    expect(buffers.poolBytes).toBe(6 << 20)
    // Over its size: the first one released goes to the garbage collector, the others are kept.
    a.release()
    expect(buffers.poolBytes).toBe(4 << 20)
    b.release()
    c.release()
    const d = buffers.acquire(2 << 20)
    const e = buffers.acquire(1 << 20)
    expect([b.bytes.buffer, c.bytes.buffer]).toContain(d.bytes.buffer)
    expect([b.bytes.buffer, c.bytes.buffer]).toContain(e.bytes.buffer)
    expect(buffers.poolBytes).toBe(4 << 20)
  })
})
