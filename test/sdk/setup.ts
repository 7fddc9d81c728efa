import { L2oClient } from '../../src/sdk'
import type { ClientOptions } from '../../src/sdk/client'
import { FakeServer } from './fake-server'

/** A client wired to a fresh FakeServer, with recorded (instant) sleeps and a fixed random. */
export function fakeSetup(options: Partial<ClientOptions> = {}) {
  const server = new FakeServer()
  const sleeps: number[] = []
  const client = new L2oClient({
    baseUrl: 'http://l2o.test/',
    apiKey: server.apiKey,
    fetch: server.fetch,
    ...options,
    retry: {
      sleep: async (ms) => {
        sleeps.push(ms)
      },
      random: () => 0.5,
      ...options.retry,
    },
  })
  return { server, client, sleeps }
}

/** 1, 2, …, n as float32: each value says which coordinate it belongs to. */
export const iota = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => i + 1)
