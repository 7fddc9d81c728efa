/**
 * Byte chunks handed from one producer (the optimizer, chunk by chunk) to one reader (a response
 * stream): the producer pushes, then closes or fails; the reader pulls, waiting for the next chunk.
 * Either side may stop it: the reader when it goes away, the request when it is refused.
 */
export class ChunkQueue {
  private readonly chunks: Uint8Array[] = []
  private closed = false
  private failed: { error: unknown } | undefined
  private stoppedFlag = false
  private wake: (() => void) | undefined

  /** Adds a chunk for the reader. */
  push(chunk: Uint8Array): void {
    this.chunks.push(chunk)
    this.notify()
  }

  /** No chunk follows: pull answers undefined once the queue is drained. */
  close(): void {
    this.closed = true
    this.notify()
  }

  /** The producer failed: pull throws `error` once the chunks pushed before are drained. */
  fail(error: unknown): void {
    this.failed ??= { error }
    this.notify()
  }

  /** Asks the producer to stop: nothing more will be read. */
  stop(): void {
    this.stoppedFlag = true
  }

  /** Whether stop() was called. */
  get stopped(): boolean {
    return this.stoppedFlag
  }

  /** The producer's error, once it failed. */
  get failure(): { error: unknown } | undefined {
    return this.failed
  }

  /** The next chunk, in order; undefined after close; throws the failure after fail. */
  async pull(): Promise<Uint8Array | undefined> {
    while (this.chunks.length === 0 && !this.closed && this.failed === undefined) {
      await new Promise<void>((resolve) => {
        this.wake = resolve
      })
    }
    if (this.chunks.length > 0) return this.chunks.shift()
    if (this.failed !== undefined) throw this.failed.error
    return undefined
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
