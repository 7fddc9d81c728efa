import * as tf from '@tensorflow/tfjs-core'

/** A tfjs backend this Node runtime can run the optimizer math on. */
export type NodeTfBackend = 'wasm' | 'cpu'

const ready = new Map<NodeTfBackend, Promise<void>>()

/**
 * Registers and selects a tfjs backend for Node, memoised per backend; rejects when tfjs cannot
 * select it (tfjs would otherwise fall back silently to another registered backend).
 *
 * wasm runs single-threaded with SIMD: tfjs disables wasm threads under Node.
 */
export function initTf(backend: NodeTfBackend): Promise<void> {
  let done = ready.get(backend)
  if (done === undefined) {
    done = select(backend)
    ready.set(backend, done)
    // A failed attempt is not cached, so a later call can retry.
    done.catch(() => ready.delete(backend))
  }
  return done.then(async () => {
    // Another caller may have switched backends since; switching to a ready backend is cheap.
    if (tf.getBackend() !== backend && !(await tf.setBackend(backend))) {
      throw new Error(`tfjs refused to switch to the ${backend} backend`)
    }
  })
}

async function select(backend: NodeTfBackend): Promise<void> {
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm')
  else await import('@tensorflow/tfjs-backend-cpu')
  if (!(await tf.setBackend(backend))) {
    throw new Error(`tfjs could not initialise the ${backend} backend`)
  }
  await tf.ready()
  if (tf.getBackend() !== backend) {
    throw new Error(`tfjs selected ${tf.getBackend()} instead of ${backend}`)
  }
}

/**
 * Selects wasm, or cpu when wasm cannot start; resolves to the backend now in use.
 *
 * @example const backend = await initPreferredTf() // 'wasm' on any Node 20 with WebAssembly SIMD
 */
export async function initPreferredTf(): Promise<NodeTfBackend> {
  try {
    await initTf('wasm')
    return 'wasm'
  } catch {
    await initTf('cpu')
    return 'cpu'
  }
}
