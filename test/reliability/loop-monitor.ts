/**
 * Preloaded into the server by the reliability suite (node --import): the event loop's delay,
 * written to $L2O_LOOP_REPORT four times a second; SIGUSR2 starts a new measurement. Not part of
 * `npm start`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

const file = process.env.L2O_LOOP_REPORT
if (file !== undefined) {
  const histogram = monitorEventLoopDelay({ resolution: 5 })
  histogram.enable()
  // Garbage collection's share of the delay: its longest pause and its total.
  let gcMaxMs = 0
  let gcTotalMs = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMaxMs = Math.max(gcMaxMs, entry.duration)
      gcTotalMs += entry.duration
    }
  }).observe({ entryTypes: ['gc'] })
  // The longest stall the server itself caused. A 10 ms timer fires late by the time the loop was
  // busy plus the time the OS ran other processes instead (on a 2-core machine shared with the load
  // generator, often the larger part). The main thread's own CPU time over the same interval
  // (Linux: /proc's schedstat, in ns; elsewhere the process's, which also counts V8's helper
  // threads) bounds the first from above, so the lateness capped by it is an upper bound on how
  // long the server's own work blocked the loop.
  const TICK_MS = 10
  const schedstat = `/proc/self/task/${process.pid}/schedstat`
  const mainCpuMs = existsSync(schedstat)
    ? () => Number(readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e6
    : () => {
        const u = process.cpuUsage()
        return (u.user + u.system) / 1000
      }
  let ownMaxMs = 0
  let lastTick = performance.now()
  let lastCpuMs = mainCpuMs()
  setInterval(() => {
    const now = performance.now()
    const cpuMs = mainCpuMs()
    ownMaxMs = Math.max(ownMaxMs, Math.min(now - lastTick - TICK_MS, cpuMs - lastCpuMs))
    lastTick = now
    lastCpuMs = cpuMs
  }, TICK_MS).unref()
  // What the memory is, at its peak (sampled with each write): V8's heap, and buffers outside it.
  const peak = { rssMb: 0, heapMb: 0, externalMb: 0, arrayBuffersMb: 0 }
  const sampleMemory = () => {
    const m = process.memoryUsage()
    peak.rssMb = Math.max(peak.rssMb, m.rss / 1048576)
    peak.heapMb = Math.max(peak.heapMb, m.heapTotal / 1048576)
    peak.externalMb = Math.max(peak.externalMb, m.external / 1048576)
    peak.arrayBuffersMb = Math.max(peak.arrayBuffersMb, m.arrayBuffers / 1048576)
  }
  const write = () => {
    sampleMemory()
    writeFileSync(
      file,
      JSON.stringify({
        maxMs: histogram.max / 1e6,
        p99Ms: histogram.percentile(99) / 1e6,
        meanMs: histogram.mean / 1e6,
        ownMaxMs,
        samples: histogram.count,
        gcMaxMs,
        gcTotalMs,
        memory: peak,
      }),
    )
  }
  setInterval(write, 250).unref()
  process.on('SIGUSR2', () => {
    histogram.reset()
    gcMaxMs = 0
    gcTotalMs = 0
    ownMaxMs = 0
    Object.assign(peak, { rssMb: 0, heapMb: 0, externalMb: 0, arrayBuffersMb: 0 })
    write()
  })
}
