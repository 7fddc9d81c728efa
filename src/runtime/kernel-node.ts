/**
 * The fused kernel on Node: src/core/fused/lstm.wasm compiled from its file, once. Learned
 * optimizers run on it; tfjs is the fallback where it cannot load (a WebAssembly without SIMD).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'

const file = path.resolve(import.meta.dirname, '../core/fused/lstm.wasm')

// workers-types declare WebAssembly.Module abstract (workerd refuses to compile at run time); Node compiles.
const WasmModule = WebAssembly.Module as unknown as new (bytes: BufferSource) => WebAssembly.Module

let compiled: WebAssembly.Module | undefined

/** lstm.wasm compiled; throws when this Node cannot compile it. */
export function fusedKernel(): WebAssembly.Module {
  compiled ??= new WasmModule(readFileSync(file))
  return compiled
}

/**
 * The kernel the Node runtime serves learned optimizers with: the fused one, unless `choice` is
 * 'tfjs' (env L2O_KERNEL) or it cannot load here (then `onFallback` hears why).
 */
export function nodeKernel(
  choice: string | undefined,
  onFallback: (reason: string) => void,
): WebAssembly.Module | undefined {
  if (choice === 'tfjs') return undefined
  if (choice !== undefined && choice !== 'fused')
    throw new Error(`L2O_KERNEL must be fused or tfjs, not ${choice}`)
  try {
    return fusedKernel()
  } catch (error) {
    onFallback(
      `the fused kernel cannot load (${error instanceof Error ? error.message : error}); serving on tfjs`,
    )
    return undefined
  }
}
