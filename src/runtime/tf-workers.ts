/**
 * tfjs on the wasm backend (SIMD, single thread) inside workerd. workerd forbids compiling wasm
 * from bytes ("Wasm code generation disallowed by embedder"), so the binary is imported as a
 * precompiled WebAssembly.Module (wrangler's default `.wasm` rule) and handed to Emscripten through
 * tfjs's `instantiateWasm` hook. Recipe and reasons: notes/stack-recipes.md §1.
 */
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'
import * as tf from '@tensorflow/tfjs-core'

// Names, not URLs: the platform below answers them without a fetch. Only the SIMD binary is bundled.
const PRECOMPILED = 'precompiled:'
const WASM_PATHS = {
  'tfjs-backend-wasm.wasm': `${PRECOMPILED}plain`,
  'tfjs-backend-wasm-simd.wasm': `${PRECOMPILED}simd`,
  'tfjs-backend-wasm-threaded-simd.wasm': `${PRECOMPILED}threaded-simd`,
}

// tfjs's instantiateWasm hook fetches the binary through the platform, then instantiates its bytes;
// the bytes are never used (see instantiateImported), so an empty body is enough.
const workersPlatform: tf.Platform = {
  fetch: (path, init) =>
    path.startsWith(PRECOMPILED) ? Promise.resolve(new Response(new ArrayBuffer(0))) : fetch(path, init),
  now: () => performance.now(),
  encode: (text) => new TextEncoder().encode(text),
  decode: (bytes, encoding) => new TextDecoder(encoding).decode(bytes),
  isTypedArray: (a): a is Float32Array | Int32Array | Uint8Array | Uint8ClampedArray =>
    a instanceof Float32Array ||
    a instanceof Int32Array ||
    a instanceof Uint8Array ||
    a instanceof Uint8ClampedArray,
}

let ready: Promise<'wasm'> | undefined

/**
 * Selects the tfjs wasm backend, once per isolate (tfjs's backend is global state), and resolves to
 * 'wasm'; later calls share the first promise. Rejects loudly when wasm cannot start: there is no
 * cpu fallback here.
 */
export function initTf(): Promise<'wasm'> {
  ready ??= selectWasm().then(
    () => 'wasm' as const,
    (error: unknown) => {
      ready = undefined // let a later request retry
      console.error('tfjs wasm backend failed to start inside workerd:', error)
      throw new Error(
        `tfjs wasm backend failed to start: ${error instanceof Error ? error.message : String(error)}`,
      )
    },
  )
  return ready
}

async function selectWasm(): Promise<void> {
  const env = tf.env()
  // workerd looks like a browser to tfjs (WorkerGlobalScope exists), so tfjs installed its browser
  // platform at import; PROD silences the "overwriting the platform" warning while we replace it.
  const prod = env.getBool('PROD')
  env.set('PROD', true)
  tf.setPlatform('workers', workersPlatform)
  env.set('PROD', prod)
  env.set('WASM_HAS_MULTITHREAD_SUPPORT', false) // no threads or SharedArrayBuffer workers in workerd
  env.set('WASM_HAS_SIMD_SUPPORT', true)
  setWasmPaths(WASM_PATHS, true) // true: tfjs gives Emscripten the instantiateWasm hook

  const instantiate = WebAssembly.instantiate
  const instantiateImported = async (source: unknown, imports?: WebAssembly.Imports) =>
    source instanceof WebAssembly.Module
      ? instantiate(source, imports)
      : { instance: await instantiate(simd, imports), module: simd }
  Object.assign(WebAssembly, { instantiate: instantiateImported })
  try {
    // setBackend resolves false (it does not throw) when the backend fails to initialise.
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false')
    await tf.ready()
  } finally {
    Object.assign(WebAssembly, { instantiate })
  }
  if (tf.getBackend() !== 'wasm') throw new Error(`tfjs selected ${tf.getBackend()} instead of wasm`)
}
