/**
 * Byte arrays for request bodies on Node (up to ~21 MB each at the per-request limit). Large ones come from
 * a WebAssembly.Memory, i.e. their own mmap'd pages, returned to the OS as soon as they are
 * collected. From malloc instead, glibc raises its mmap threshold after the first such free and
 * serves the next ones from its heap, which fragments and keeps ~100 MB resident that nothing uses.
 */

const pageBytes = 65_536
const largeBytes = 1 << 20

/** A zeroed Uint8Array of `length` bytes whose buffer starts at offset 0 (8-aligned). */
export function allocateBytes(length: number): Uint8Array {
  if (length >= largeBytes && typeof WebAssembly !== 'undefined') {
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(length / pageBytes) })
      return new Uint8Array(memory.buffer, 0, length)
    } catch {
      // Address space for wasm memories is capped; fall back to the ordinary allocator.
    }
  }
  return new Uint8Array(length)
}
