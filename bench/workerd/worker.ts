/**
 * The benchmarks' Worker: times optimizer steps inside workerd, with the fused kernel imported as a
 * precompiled module exactly as the app's Worker imports it. Driven by start.ts:
 * - POST /optimizer?kind=fused: body = a kernel model (model.ts encodes it);
 *   POST /optimizer?kind=adam: the Adam baseline;
 * - POST /run?runs=R&warmup=W&repeat=K: body = safetensors `grads` [N] and `state` [N, S]; answers
 *   the milliseconds per `updateInto` of each of R timed runs of K updates (performance.now() advances
 *   during compute in local workerd, unlike on Cloudflare's machines, but only by whole
 *   milliseconds: K makes a run long enough to measure).
 */
import { adam } from '../../src/core/baselines'
import kernel from '../../src/core/fused/lstm.wasm'
import { fusedKernelOptimizer } from '../../src/core/fused/lstm-fused'
import type { Optimizer } from '../../src/core/optimizer'
import { decode } from '../../src/safetensors'
import { decodeKernelModel } from './model'

let optimizer: Optimizer | undefined

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url)
    const number = (name: string) => Number(url.searchParams.get(name))
    if (url.pathname === '/optimizer') {
      const kind = url.searchParams.get('kind')
      optimizer =
        kind === 'adam'
          ? adam({ learningRate: 0.001 })
          : fusedKernelOptimizer(decodeKernelModel(new Uint8Array(await request.arrayBuffer())), kernel)
      return Response.json({ stateSize: optimizer.stateSize })
    }
    if (url.pathname === '/run' && optimizer !== undefined) {
      const file = decode(new Uint8Array(await request.arrayBuffer()))
      const grads = file.tensors.get('grads')!.data as Float32Array
      const state = file.tensors.get('state')!.data as Float32Array
      // The state in place and the updates into a buffer made once, as the server steps (and as
      // bench/kernel.ts times Node): a 128 MB isolate would otherwise fill with 21 MB results.
      const out = { updates: new Float32Array(grads.length), state }
      for (let i = 0; i < number('warmup'); i++) optimizer.updateInto(grads, state, out)
      const times: number[] = []
      const repeat = Math.max(1, number('repeat'))
      for (let i = 0; i < number('runs'); i++) {
        const start = performance.now()
        for (let k = 0; k < repeat; k++) optimizer.updateInto(grads, state, out)
        times.push((performance.now() - start) / repeat)
      }
      return Response.json({ times })
    }
    return new Response('POST /optimizer, then POST /run', { status: 404 })
  },
}
