/**
 * The bench Worker (worker.ts) in local workerd, started with wrangler's unstable_startWorker:
 * loads an optimizer into it and times steps inside the isolate. Used by bench:kernel and bench:cost.
 */
import path from 'node:path'
import type { KernelModel } from '../../src/core/fused/kernel'
import { encode } from '../../src/safetensors'
import { encodeKernelModel } from './model'

// wrangler: offline and quiet (no update check, telemetry or Request.cf fetch), as in .ci/run.
Object.assign(process.env, {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
})

/** A running bench Worker. */
export interface BenchWorker {
  /** Loads the fused kernel with `model`, or Adam; resolves to the optimizer's state size. */
  load(optimizer: KernelModel | 'adam'): Promise<number>
  /**
   * Milliseconds per step inside workerd, for each of `runs` timed runs of `repeat` steps (workerd's
   * clock has whole milliseconds), after `warmup` untimed steps.
   */
  time(
    grads: Float32Array,
    state: Float32Array,
    runs: number,
    warmup: number,
    repeat?: number,
  ): Promise<number[]>
  dispose(): Promise<void>
}

export async function startBenchWorker(): Promise<BenchWorker> {
  const { unstable_startWorker } = await import('wrangler')
  const worker = await unstable_startWorker({
    config: path.join(import.meta.dirname, 'wrangler.toml'),
    dev: { server: { port: 0 }, inspector: false, logLevel: 'error' },
  })
  await worker.ready
  const post = async (url: string, body: Uint8Array) => {
    const res = await worker.fetch(`http://bench${url}`, { method: 'POST', body })
    if (!res.ok) throw new Error(`bench Worker ${url}: ${res.status} ${await res.text()}`)
    return res.json()
  }
  return {
    load: async (optimizer) => {
      const answer = (
        optimizer === 'adam'
          ? await post('/optimizer?kind=adam', new Uint8Array(0))
          : await post('/optimizer?kind=fused', encodeKernelModel(optimizer))
      ) as { stateSize: number }
      return answer.stateSize
    },
    time: async (grads, state, runs, warmup, repeat = 1) => {
      const n = grads.length
      const body = encode({
        grads: { dtype: 'F32', shape: [n], data: grads },
        state: { dtype: 'F32', shape: [n, n === 0 ? 0 : state.length / n], data: state },
      })
      const query = `runs=${runs}&warmup=${warmup}&repeat=${repeat}`
      return ((await post(`/run?${query}`, body)) as { times: number[] }).times
    },
    dispose: () => worker.dispose(),
  }
}
