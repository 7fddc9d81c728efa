import { describe, expect, it } from 'vitest'
import { ChunkQueue } from './chunk-queue'

const bytes = (...values: number[]) => Uint8Array.from(values)

describe('ChunkQueue', () => {
  it('hands chunks over in order, waiting for the producer, then ends after close', async () => {
    const queue = new ChunkQueue()
    const first = queue.pull()
    queue.push(bytes(1))
    queue.push(bytes(2))
    expect(await first).toEqual(bytes(1))
    const later = queue.pull()
    expect(await later).toEqual(bytes(2))
    const end = queue.pull()
    queue.close()
    expect(await end).toBeUndefined()
    expect(await queue.pull()).toBeUndefined()
  })

  it('drains what was pushed before a failure, then throws it', async () => {
    const queue = new ChunkQueue()
    queue.push(bytes(1))
    queue.fail(new Error('boom'))
    queue.fail(new Error('second'))
    expect(queue.failure?.error).toEqual(new Error('boom'))
    expect(await queue.pull()).toEqual(bytes(1))
    await expect(queue.pull()).rejects.toThrow('boom')
  })

  it('wakes a waiting reader on failure', async () => {
    const queue = new ChunkQueue()
    const waiting = queue.pull()
    queue.fail(new Error('late'))
    await expect(waiting).rejects.toThrow('late')
  })

  it('tells the producer to stop once stopped', () => {
    const queue = new ChunkQueue()
    expect(queue.stopped).toBe(false)
    queue.stop()
    expect(queue.stopped).toBe(true)
  })
})
