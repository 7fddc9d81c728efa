/**
 * The capacity model of l2o on Cloudflare Workers (docs/capacity.md): for models of 10^4 to 10^9
 * parameters and 1 to 10^5 clients, in stateless and session mode, what one optimizer step costs
 * (requests, bytes on the wire, state stored, CPU time, objects touched, price on Workers Paid) and
 * which documented platform limit is hit first. Sizes come from the code itself (the per-request
 * limit on Workers, the shard size, the objects a session spreads over); prices and limits are the
 * named, dated constants below; measured figures name the command that measured them.
 *
 *   npx tsx scripts/capacity.ts            prints the generated part of docs/capacity.md
 *   npx tsx scripts/capacity.ts --write    rewrites it in docs/capacity.md (between the markers)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { defaultMaxCoordinatesPerRequest } from '../src/contract'
import { coordinateLimit } from '../src/server/compute'
import { objectCount } from '../src/server/sessions/durable-store'
import { shardSizeFor } from '../src/server/sessions/shards'

/** Where each documented figure below was read (via the docs corpus), and when. */
export const read = {
  on: '2026-11-29',
  workersPricing: 'https://developers.cloudflare.com/workers/platform/pricing/ (Standard usage model)',
  workersLimits: 'https://developers.cloudflare.com/workers/platform/limits/',
  doPricing: 'https://developers.cloudflare.com/durable-objects/platform/pricing/',
  doStoragePricing:
    'Durable Objects pricing, "SQLite storage backend" (cloudflare-docs partial storage_api_pricing.mdx)',
  doLimits: 'https://developers.cloudflare.com/durable-objects/platform/limits/ and the Durable Objects FAQ',
  d1Pricing: 'https://developers.cloudflare.com/d1/platform/pricing/',
  d1Limits: 'https://developers.cloudflare.com/d1/platform/limits/ (page dated Apr 21, 2026)',
}

/** Workers Paid prices in USD, read on `read.on`. The monthly included amounts are left out: these are marginal costs. */
export const prices = {
  /** Workers: per million requests (10 million a month included). */
  workerRequestsPerMillion: 0.3,
  /** Workers: per million CPU milliseconds (30 million a month included). */
  workerCpuPerMillionMs: 0.02,
  /** Durable Objects: per million requests; every RPC call on a stub is one (1 million a month included). */
  objectRequestsPerMillion: 0.15,
  /** Durable Objects: per million GB-s of wall time while active, 128 MB each (400,000 GB-s included). */
  objectGbSecondsPerMillion: 12.5,
  /** SQLite-backed Durable Objects: per million rows written (50 million a month included). */
  objectRowsWrittenPerMillion: 1.0,
  /** SQLite-backed Durable Objects: per million rows read (25 billion a month included). */
  objectRowsReadPerMillion: 0.001,
  /** SQLite-backed Durable Objects: per GB-month stored (5 GB-month included). */
  objectStoredPerGbMonth: 0.2,
  /** D1: per million rows read (25 billion a month included). */
  d1RowsReadPerMillion: 0.001,
  /** D1: per million rows written (50 million a month included). */
  d1RowsWrittenPerMillion: 1.0,
  /** D1: per GB-month stored (5 GB included). */
  d1StoredPerGbMonth: 0.75,
}

/** Documented platform limits (Workers Paid), read on `read.on`. */
export const limits = {
  /** Request body: set by the zone's Cloudflare plan (Free and Pro: 100 MB). */
  requestBodyBytes: 100e6,
  /** CPU time per Worker invocation: 30 s by default, configurable to 5 min. */
  workerCpuMs: 30_000,
  /** CPU per Durable Object request: 30 s by default, configurable to 5 min. */
  objectCpuMs: 30_000,
  /** Memory per isolate (Worker or Durable Object), shared by the requests it runs. */
  isolateBytes: 128e6,
  /** SQLite storage per Durable Object. (Per account: unlimited on Workers Paid.) */
  objectStorageBytes: 10e9,
  /** D1: size of one database (10 GB, cannot be raised). */
  d1DatabaseBytes: 10e9,
  /** Subrequests per Worker invocation (Workers Paid). D1 allows 1,000 queries per invocation. */
  subrequests: 10_000,
  /**
   * D1 runs one query at a time: "If your average query takes 1 ms, you can run approximately
   * 1,000 queries per second." The model assumes 1 ms per query.
   */
  d1QueryMs: 1,
  /** Durable Objects: "An individual Object has a soft limit of 1,000 requests per second", single-threaded. */
  objectRequestsPerSecond: 1_000,
}

/** Figures measured in this repository (commands named), and the model's assumptions. */
export const measured = {
  /**
   * Paper optimizer (L = 2, H = 20; l2o-mnist@1.1.0) in workerd on the fused kernel: 633 ns of CPU a
   * coordinate-step, about 1.58 M coordinates per CPU second (npm run bench:cost, 2026-12-01). It was
   * 294 (k per second) when tfjs-wasm did the math (notes/stack-recipes.md §5).
   */
  coordinatesPerCpuMs: 1_580,
  /** Assumed CPU per request beyond the math: auth (SHA-256 of the key), parsing, encoding. */
  requestOverheadCpuMs: 1,
  /** Bytes on the wire per request beyond the tensors: HTTP and safetensors headers (npm run bench:http). */
  statelessRequestOverheadBytes: 1_200,
  sessionRequestOverheadBytes: 850,
  /** workerd's peak − idle for one step at the Workers limit (npm run bench:edge-memory): stateless S = 80 / S = 256, session shard. */
  statelessStepPeakBytes: 50e6,
  sessionStepPeakBytes: 42e6,
  /**
   * D1 queries per request: stateless (the address's failed key checks, the key with its quotas,
   * the pin); session (those, and the session index). The request-rate counter's write is batched
   * (at most one a second per client and isolate) and not counted.
   */
  statelessD1Queries: 3,
  sessionD1Queries: 4,
  /** Rows an object reads per shard step (the shard, the dropped mark); it writes one. */
  objectRowsReadPerShardStep: 2,
  /** A session's index row in D1, bytes. */
  sessionIndexBytes: 300,
}

/** Requests a client keeps in flight for one step (the SDKs' `concurrency`; their default is 4). */
export const inFlight = 16

/** An optimizer as the model sees it: floats of state per coordinate (F32), and its speed. */
export interface ModelOptimizer {
  stateSize: number
  coordinatesPerCpuMs: number
}

/** The optimizer the model runs: the paper's (S = 80), states in F32. */
const paperOptimizer: ModelOptimizer = { stateSize: 80, coordinatesPerCpuMs: measured.coordinatesPerCpuMs }

/** The Worker's step budget (src/runtime/workers.ts). */
const workersBinaryStepBytes = 4 * 1024 * 1024

export type Mode = 'stateless' | 'session'

/** What one optimizer step of one client's model of `numParams` parameters costs. */
export interface StepCost {
  /** Requests to the Worker. */
  requests: number
  /** Coordinates per request. */
  perRequest: number
  wireBytes: number
  /** Bytes the server keeps between steps (state and last updates). */
  storedBytes: number
  /** CPU of the Worker, ms. */
  workerCpuMs: number
  /** CPU (≈ wall time) inside Durable Objects, ms. */
  objectCpuMs: number
  /** Durable Objects touched. */
  objects: number
  /** Largest request body, bytes. */
  bodyBytes: number
  d1Queries: number
  /** Peak memory of one request, bytes (measured). */
  peakBytes: number
  /** Bytes each object of the session stores. */
  perObjectBytes: number
  /** Shard steps the busiest object runs per model step. */
  shardsPerObject: number
  /** Wall time of the step with `inFlight` requests in flight, the math dominating, ms. */
  stepMs: number
  /** Marginal price of the step, USD (storage is billed per month, see storageUsdPerMonth). */
  usd: number
  /** What the stored state costs per month, USD. */
  storageUsdPerMonth: number
}

export function stepCost(numParams: number, mode: Mode, optimizer = paperOptimizer): StepCost {
  const million = 1e6
  const { stateSize, coordinatesPerCpuMs } = optimizer
  const stateBytesPerCoordinate = 4 * stateSize
  if (mode === 'stateless') {
    const perRequest = coordinateLimit(stateSize, defaultMaxCoordinatesPerRequest, workersBinaryStepBytes)
    const requests = Math.ceil(numParams / perRequest)
    const workerCpuMs = numParams / coordinatesPerCpuMs + requests * measured.requestOverheadCpuMs
    const d1Queries = requests * measured.statelessD1Queries
    return {
      requests,
      perRequest,
      wireBytes:
        2 * numParams * (4 + stateBytesPerCoordinate) + requests * measured.statelessRequestOverheadBytes,
      storedBytes: 0,
      workerCpuMs,
      objectCpuMs: 0,
      objects: 0,
      bodyBytes: Math.min(numParams, perRequest) * (4 + stateBytesPerCoordinate),
      d1Queries,
      peakBytes: measured.statelessStepPeakBytes,
      perObjectBytes: 0,
      shardsPerObject: 0,
      stepMs: Math.ceil(requests / inFlight) * (workerCpuMs / requests),
      usd:
        (requests * prices.workerRequestsPerMillion +
          workerCpuMs * prices.workerCpuPerMillionMs +
          d1Queries * prices.d1RowsReadPerMillion) /
        million,
      storageUsdPerMonth: 0,
    }
  }
  const shardSize = shardSizeFor(stateSize, 'F32', defaultMaxCoordinatesPerRequest)
  const shards = Math.ceil(numParams / shardSize)
  const objects = objectCount({ numParams, shardSize })
  const storedBytes = numParams * (stateBytesPerCoordinate + 4)
  const workerCpuMs = shards * measured.requestOverheadCpuMs
  const objectCpuMs = numParams / coordinatesPerCpuMs + shards * measured.requestOverheadCpuMs
  const d1Queries = shards * measured.sessionD1Queries
  const gbSeconds = (0.128 * objectCpuMs) / 1000
  return {
    requests: shards,
    perRequest: shardSize,
    wireBytes: 8 * numParams + shards * measured.sessionRequestOverheadBytes,
    storedBytes,
    workerCpuMs,
    objectCpuMs,
    objects,
    bodyBytes: 4 * Math.min(numParams, shardSize),
    d1Queries,
    peakBytes: measured.sessionStepPeakBytes,
    perObjectBytes: storedBytes / objects,
    shardsPerObject: Math.ceil(shards / objects),
    // An object steps its shards one at a time, so at most min(inFlight, objects) run at once.
    stepMs: Math.ceil(shards / Math.min(inFlight, objects)) * (objectCpuMs / shards),
    usd:
      (shards * prices.workerRequestsPerMillion +
        workerCpuMs * prices.workerCpuPerMillionMs +
        shards * prices.objectRequestsPerMillion +
        gbSeconds * prices.objectGbSecondsPerMillion +
        shards * prices.objectRowsWrittenPerMillion +
        shards * measured.objectRowsReadPerShardStep * prices.objectRowsReadPerMillion +
        d1Queries * prices.d1RowsReadPerMillion) /
      million,
    storageUsdPerMonth: (storedBytes / 1e9) * prices.objectStoredPerGbMonth,
  }
}

/** Steps a second of one client: once a second, or back to back when a step takes longer. */
export function stepsPerSecond(numParams: number, mode: Mode): number {
  return Math.min(1, 1000 / stepCost(numParams, mode).stepMs)
}

/** How close `clients` clients, each at stepsPerSecond, come to each documented limit (1 = at it). */
export function limitUse(numParams: number, clients: number, mode: Mode): Record<string, number> {
  const step = stepCost(numParams, mode)
  const rate = clients * stepsPerSecond(numParams, mode)
  const perRequestCpuMs = (mode === 'stateless' ? step.workerCpuMs : step.objectCpuMs) / step.requests
  const use: Record<string, number> = {
    'request size': step.bodyBytes / limits.requestBodyBytes,
    'CPU per request': perRequestCpuMs / limits.workerCpuMs,
    'memory per isolate': step.peakBytes / limits.isolateBytes,
    // A step's requests make its D1 queries (and one object call); GET or DELETE of a session calls each of its objects.
    subrequests: (mode === 'stateless' ? measured.statelessD1Queries : 2 + step.objects) / limits.subrequests,
    'D1 throughput': (rate * step.d1Queries * limits.d1QueryMs) / 1000,
  }
  if (mode === 'session') {
    use['object storage'] = step.perObjectBytes / limits.objectStorageBytes
    use['D1 size'] = (clients * measured.sessionIndexBytes) / limits.d1DatabaseBytes
    use['requests per object'] =
      (stepsPerSecond(numParams, mode) * step.shardsPerObject) / limits.objectRequestsPerSecond
  }
  return use
}

/** How many clients, each at stepsPerSecond, keep D1 busy all the time (its use reaches 1). */
export function clientsSaturatingD1(numParams: number, mode: Mode): number {
  const step = stepCost(numParams, mode)
  return 1000 / (stepsPerSecond(numParams, mode) * step.d1Queries * limits.d1QueryMs)
}

/** The limit `clients` clients of a model of `numParams` reach first, and how far they are past it. */
export function firstLimit(numParams: number, clients: number, mode: Mode): { name: string; use: number } {
  const [name, use] = Object.entries(limitUse(numParams, clients, mode)).sort((a, b) => b[1] - a[1])[0]
  return { name, use }
}

const sizes = [1e4, 1e5, 1e6, 1e7, 1e8, 1e9]
const clientCounts = [1, 10, 100, 1e3, 1e4, 1e5]
const modes: Mode[] = ['stateless', 'session']

const count = (n: number) => (n >= 1e4 ? `10^${Math.round(Math.log10(n))}` : n.toLocaleString('en-US'))
const bytes = (n: number) => {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`
}
const ms = (n: number) =>
  n >= 1000 ? `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)} s` : `${n.toFixed(n < 10 ? 1 : 0)} ms`
/** Two significant figures, without exponents. */
const round2 = (n: number) =>
  n >= 10 ? Math.round(Number(n.toPrecision(2))).toLocaleString('en-US') : n.toPrecision(2)
const usd = (n: number) =>
  n >= 1 ? `$${n.toFixed(2)}` : n >= 0.01 ? `$${n.toFixed(3)}` : `$${n.toPrecision(2)}`

/** The generated part of docs/capacity.md. */
export function capacityTables(): string {
  const out: string[] = []
  const stateless = stepCost(1, 'stateless')
  const session = stepCost(1, 'session')
  out.push(
    `Per request on Workers: stateless steps carry at most ${stateless.perRequest.toLocaleString('en-US')} coordinates (grads and F32 state in 4 MiB); a session shard holds ${session.perRequest.toLocaleString('en-US')} (state and last updates in one 2 MB row).`,
    '',
    '### One step of one client',
    '',
    `| parameters | mode | requests | on the wire | state kept by the server | CPU (Worker + objects) | step time, ${inFlight} in flight | objects touched | price per step | per 10^6 steps | storage per month |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  )
  for (const n of sizes) {
    for (const mode of modes) {
      const s = stepCost(n, mode)
      out.push(
        `| ${count(n)} | ${mode} | ${s.requests.toLocaleString('en-US')} | ${bytes(s.wireBytes)} | ${bytes(s.storedBytes)} | ${ms(s.workerCpuMs + s.objectCpuMs)} | ${ms(s.stepMs)} | ${s.objects.toLocaleString('en-US')} | ${usd(s.usd)} | ${usd(s.usd * 1e6)} | ${usd(s.storageUsdPerMonth)} |`,
      )
    }
  }
  out.push(
    '',
    `### Clients that saturate D1 (${limits.d1QueryMs} ms a query), each stepping once a second or back to back`,
    '',
    `| mode | ${sizes.map(count).join(' | ')} |`,
    `|---|${sizes.map(() => '---:').join('|')}|`,
    ...modes.map(
      (mode) => `| ${mode} | ${sizes.map((n) => round2(clientsSaturatingD1(n, mode))).join(' | ')} |`,
    ),
  )
  out.push(
    '',
    '### Many clients, each stepping once a second (or back to back when a step takes longer)',
    '',
    'Totals per second; the last column is the documented limit that is closest (use 1.0 = at the limit; above 1, past it).',
    '',
    '| parameters | clients | mode | steps/s each | requests/s | on the wire/s | state kept | D1 queries/s | objects | price per hour | limit hit first (use) |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|',
  )
  for (const n of sizes) {
    for (const c of clientCounts) {
      for (const mode of modes) {
        const s = stepCost(n, mode)
        const rate = stepsPerSecond(n, mode)
        const first = firstLimit(n, c, mode)
        out.push(
          `| ${count(n)} | ${count(c)} | ${mode} | ${rate < 1 ? rate.toPrecision(2) : '1'} | ${Math.round(c * rate * s.requests).toLocaleString('en-US')} | ${bytes(c * rate * s.wireBytes)} | ${bytes(c * s.storedBytes)} | ${Math.round(c * rate * s.d1Queries).toLocaleString('en-US')} | ${(c * s.objects).toLocaleString('en-US')} | ${usd(c * rate * s.usd * 3600 + (c * s.storageUsdPerMonth) / 730)} | ${first.name} (${round2(first.use)}) |`,
        )
      }
    }
  }
  out.push(
    '',
    '### The constants',
    '',
    `Prices and limits as read on ${read.on}: ${Object.entries(read)
      .filter(([k]) => k !== 'on')
      .map(([, v]) => v)
      .join('; ')}.`,
    '',
    '| constant | value |',
    '|---|---:|',
    ...Object.entries({ ...prices, ...limits, ...measured }).map(
      ([k, v]) => `| ${k} | ${v.toLocaleString('en-US')} |`,
    ),
  )
  return out.join('\n')
}

const begin = '<!-- capacity.ts: begin -->'
const end = '<!-- capacity.ts: end -->'
const doc = path.resolve(import.meta.dirname, '../docs/capacity.md')

/** docs/capacity.md with its generated part replaced by `tables`. */
export function withTables(text: string, tables: string): string {
  const from = text.indexOf(begin)
  const to = text.indexOf(end)
  if (from < 0 || to < from) throw new Error(`docs/capacity.md has no ${begin} … ${end}`)
  return `${text.slice(0, from + begin.length)}\n${tables}\n${text.slice(to)}`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes('--write'))
    writeFileSync(doc, withTables(readFileSync(doc, 'utf8'), capacityTables()))
  else console.log(capacityTables())
}
