/**
 * `npm run test:reliability`: the server under hostile requests, kill -9 restarts, mixed load and
 * slow bodies, each against `npm start`'s own command on 127.0.0.1 with a fresh data directory.
 * Prints one table of figures and exits non-zero if any target is missed. `-- --smoke` is the CI
 * version (fewer requests, kills and clients, shorter load; a few minutes at most).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freePort } from '../support/port'
import { fuzz } from './fuzz'
import { killRestarts } from './kill'
import { mixedLoad } from './load'
import { ServerProcess } from './server'
import { slowBodies } from './slow'

const { values } = parseArgs({ options: { smoke: { type: 'boolean' }, only: { type: 'string' } } })
const smoke = values.smoke === true
const only = new Set((values.only ?? 'fuzz,kill,load,large,slow').split(','))
// The smoke run (CI) is shorter, and its /healthz bound looser: CI machines are shared, and it is
// there to catch a regression (before the compute queue yielded, /healthz took seconds), not to
// measure. The full run's targets are the issue's, for an idle machine. The event loop's blocks
// are the server's own (loop-monitor.ts): the wall-clock delay also counts the time the OS gave the
// load generator and other processes, and is reported beside them.
const plan = smoke
  ? {
      fuzz: 2500,
      restarts: 3,
      minSteps: 8,
      clients: 60,
      seconds: 8,
      healthP99Ms: 250,
      ownBlockMs: 100,
      large: 4,
      largeSeconds: 5,
      slow: 10,
      bodyTimeoutMs: 5000,
    }
  : {
      fuzz: 10_000,
      restarts: 20,
      minSteps: 40,
      clients: 200,
      seconds: 30,
      healthP99Ms: 100,
      ownBlockMs: 50,
      large: 20,
      largeSeconds: 20,
      slow: 30,
      bodyTimeoutMs: undefined,
    }

interface Row {
  check: string
  figure: string
  target: string
  ok: boolean | undefined
}
const rows: Row[] = []
const row = (check: string, figure: string | number, target = '', ok?: boolean) =>
  rows.push({ check, figure: String(figure), target, ok })
const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x))

async function withServer<T>(flags: string[], use: (server: ServerProcess) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'l2o-reliability-'))
  const server = new ServerProcess({ dataDir, port: await freePort(), flags })
  try {
    await server.start()
    return await use(server)
  } catch (error) {
    console.error(server.output().slice(-3000))
    throw error
  } finally {
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const load0 = os.loadavg()
const started = performance.now()
console.log(
  `reliability suite (${smoke ? 'smoke' : 'full'}): ${os.cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}`,
)

if (only.has('fuzz')) {
  const f = await withServer([], (server) => fuzz(server, plan.fuzz))
  row(
    'fuzz: hostile requests over every route',
    `${f.requests} in ${fmt(f.seconds)} s`,
    `≥ ${plan.fuzz}`,
    f.requests >= plan.fuzz,
  )
  row('fuzz: 5xx answers', f.serverErrors, '0', f.serverErrors === 0)
  row('fuzz: connection errors', f.connectionErrors, '0', f.connectionErrors === 0)
  row('fuzz: errors not problem+json', f.notProblem, '0', f.notProblem === 0)
  row('fuzz: answers with a non-finite number', f.nonFinite, '0', f.nonFinite === 0)
  row(
    `fuzz: database after ${f.phaseA} requests that must change nothing`,
    f.databaseUnchanged ? 'unchanged' : 'CHANGED',
    'unchanged',
    f.databaseUnchanged,
  )
  row(
    'fuzz: statuses',
    Object.entries(f.byStatus)
      .map(([s, n]) => `${s}×${n}`)
      .join(' '),
  )
  for (const example of f.examples) console.log(`  fuzz: ${example}`)
}

if (only.has('kill')) {
  const k = await killRestarts({ restarts: plan.restarts, minSteps: plan.minSteps, numParams: 8000 })
  row(
    'kill -9: restarts mid-session (retrying SDK client)',
    `${k.restarts} in ${fmt(k.seconds)} s`,
    `≥ ${plan.restarts}`,
    k.restarts >= plan.restarts,
  )
  row(
    'kill -9: steps (2 shards each) with other updates than unkilled',
    `${k.stepsDiffering} of ${k.steps}`,
    '0',
    k.stepsDiffering === 0,
  )
  row(
    'kill -9: shards not at the last step (lost or doubled)',
    `${k.shardStepsOff} of ${k.shards}`,
    '0',
    k.shardStepsOff === 0,
  )
  row(
    'kill -9: stored state vs the unkilled run',
    k.stateIdentical ? 'bit-identical' : 'DIFFERENT',
    'bit-identical',
    k.stateIdentical,
  )
}

if (only.has('load')) {
  const l = await withServer([], (server) =>
    mixedLoad(server, { clients: plan.clients, seconds: plan.seconds, numParams: 1000 }),
  )
  row('load: clients × seconds (half session, half stateless, N = 1,000)', `${l.clients} × ${l.seconds} s`)
  row('load: answers', `${l.answers} (${fmt(l.answersPerSecond, 0)}/s)`)
  row(
    'load: server CPU per answer; load average (1 min) at the end',
    `${fmt(l.serverCpuMsPerAnswer)} ms; ${fmt(l.loadAverage, 2)}`,
  )
  row('load: session step p50 / p99', `${fmt(l.sessionP50Ms)} / ${fmt(l.sessionP99Ms)} ms`)
  row('load: stateless step p50 / p99', `${fmt(l.statelessP50Ms)} / ${fmt(l.statelessP99Ms)} ms`)
  row('load: errors (other than 429/503 with Retry-After)', l.errors, '0', l.errors === 0)
  row('load: 429/503 with Retry-After', l.refusals)
  row(
    'load: /healthz p50 / p99 / max',
    `${fmt(l.healthP50Ms)} / ${fmt(l.healthP99Ms)} / ${fmt(l.healthMaxMs)} ms (${l.healthProbes} probes)`,
    `p99 ≤ ${plan.healthP99Ms} ms`,
    l.healthP99Ms <= plan.healthP99Ms,
  )
  row(
    'load: fewest answers of a client / fair share',
    fmt(l.minShareOfFair, 2),
    '≥ 0.5',
    l.minShareOfFair >= 0.5,
  )
  row('load: longest event-loop delay, wall (p99)', `${fmt(l.loopMaxMs)} ms (${fmt(l.loopP99Ms)} ms)`)
  row(
    "load: longest block by the server's own work",
    `${fmt(l.loopOwnMaxMs)} ms`,
    `≤ ${plan.ownBlockMs} ms`,
    l.loopOwnMaxMs <= plan.ownBlockMs,
  )
  row('load: longest GC pause (all GC)', `${fmt(l.gcMaxMs)} ms (${fmt(l.gcTotalMs / 1000)} s)`)
  row('load: server peak RSS', `${fmt(l.peakRssMb, 0)} MB`)
  for (const example of l.errorExamples) console.log(`  load: ${example}`)
}

if (only.has('large')) {
  // Steps at the per-request limit: each is 41 optimizer calls of ~1,600 coordinates, and 20 of
  // them in flight exceed the bodies' memory budget, so some are refused with 503 and resent.
  const l = await withServer([], (server) =>
    mixedLoad(server, {
      clients: plan.large,
      seconds: plan.largeSeconds,
      numParams: 65_536,
      sessions: false,
    }),
  )
  row('large steps: clients × seconds (stateless, N = 65,536)', `${l.clients} × ${l.seconds} s`)
  row(
    'large steps: answers; p50 / p99',
    `${l.answers}; ${fmt(l.statelessP50Ms, 0)} / ${fmt(l.statelessP99Ms, 0)} ms`,
  )
  row('large steps: errors (other than 429/503 with Retry-After)', l.errors, '0', l.errors === 0)
  row('large steps: 429/503 with Retry-After', l.refusals)
  row('large steps: /healthz p50 / p99', `${fmt(l.healthP50Ms)} / ${fmt(l.healthP99Ms)} ms`)
  row(
    'large steps: longest event-loop delay, wall (p99); longest GC pause',
    `${fmt(l.loopMaxMs)} ms (${fmt(l.loopP99Ms)} ms); ${fmt(l.gcMaxMs)} ms`,
  )
  row(
    "large steps: longest block by the server's own work",
    `${fmt(l.loopOwnMaxMs)} ms`,
    `≤ ${plan.ownBlockMs} ms`,
    l.loopOwnMaxMs <= plan.ownBlockMs,
  )
  row('large steps: server peak RSS', `${fmt(l.peakRssMb, 0)} MB`, '< 512 MB', l.peakRssMb < 512)
  for (const example of l.errorExamples) console.log(`  large: ${example}`)
}

if (only.has('slow')) {
  const flags = plan.bodyTimeoutMs === undefined ? [] : ['--body-timeout-ms', String(plan.bodyTimeoutMs)]
  const s = await withServer(flags, (server) =>
    slowBodies(server, { connections: plan.slow, numParams: 65_536, waitSeconds: 40 }),
  )
  row(
    `slow bodies: ${s.connections} × ${fmt(s.bodyMb)} MB, one byte short`,
    Object.entries(s.statuses)
      .map(([st, n]) => `${st}×${n}`)
      .join(' '),
  )
  row(
    'slow bodies: answered and closed within',
    `${fmt(s.maxAnswerSeconds)} s / ${fmt(s.maxCloseSeconds)} s`,
    '≤ 30 s',
    s.answered === s.connections && s.maxCloseSeconds <= 30,
  )
  row('slow bodies: server peak RSS', `${fmt(s.peakRssMb, 0)} MB`, '< 512 MB', s.peakRssMb < 512)
  row(
    'slow bodies: another client meanwhile',
    `${s.otherStatus} in ${fmt(s.otherMs)} ms`,
    '200',
    s.otherStatus === 200,
  )
}

const load1 = os.loadavg()
console.log(`\n| check | figure | target | |\n|---|---|---|---|`)
for (const r of rows)
  console.log(
    `| ${r.check} | ${r.figure} | ${r.target} | ${r.ok === undefined ? '' : r.ok ? 'ok' : 'FAIL'} |`,
  )
console.log(
  `\n${fmt((performance.now() - started) / 1000, 0)} s; load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}`,
)
const failed = rows.filter((r) => r.ok === false)
if (failed.length > 0) {
  console.log(`${failed.length} target(s) missed`)
  process.exit(1)
}
process.exit(0)
