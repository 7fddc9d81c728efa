/** The fused kernel (src/core/fused/lstm.wasm) compiled for tests in Node, once. */
import { readFileSync } from 'node:fs'
import path from 'node:path'

// workers-types declare WebAssembly.Module abstract (workerd refuses to compile at run time); Node compiles.
const WasmModule = WebAssembly.Module as unknown as new (bytes: BufferSource) => WebAssembly.Module

let compiled: WebAssembly.Module | undefined

/** lstm.wasm as a WebAssembly.Module, as the Node runtime makes it. */
export function fusedKernel(): WebAssembly.Module {
  compiled ??= new WasmModule(readFileSync(path.join(import.meta.dirname, '../../src/core/fused/lstm.wasm')))
  return compiled
}
