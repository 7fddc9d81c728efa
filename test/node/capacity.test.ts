import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  capacityTables,
  clientsSaturatingD1,
  firstLimit,
  measured,
  prices,
  stepCost,
  withTables,
} from '../../scripts/capacity'

const doc = path.resolve(import.meta.dirname, '../../docs/capacity.md')

describe('the capacity model', () => {
  it('is what docs/capacity.md shows (npx tsx scripts/capacity.ts --write)', () => {
    const text = readFileSync(doc, 'utf8')
    expect(withTables(text, capacityTables())).toBe(text)
  })

  it("takes its sizes from the Worker's limits and the session layout", () => {
    expect(stepCost(1e6, 'stateless')).toMatchObject({ perRequest: 12_743, requests: 79, objects: 0 })
    expect(stepCost(1e6, 'session')).toMatchObject({ perRequest: 6_160, requests: 163, objects: 16 })
    expect(stepCost(1e9, 'session').objects).toBe(159)
    // State and last updates, F32: 81 floats a coordinate.
    expect(stepCost(1e6, 'session').storedBytes).toBe(324e6)
  })

  it('prices a step from the named constants', () => {
    const s = stepCost(1e4, 'stateless')
    const cpuMs = 1e4 / measured.coordinatesPerCpuMs + 1
    expect(s.workerCpuMs).toBeCloseTo(cpuMs)
    expect(s.usd).toBeCloseTo(
      (prices.workerRequestsPerMillion +
        cpuMs * prices.workerCpuPerMillionMs +
        measured.statelessD1Queries * prices.d1RowsReadPerMillion) /
        1e6,
      12,
    )
  })

  it('finds D1 read throughput the first limit as clients grow, sooner for sessions', () => {
    expect(firstLimit(1e4, 1e3, 'session').name).toBe('D1 throughput')
    expect(firstLimit(1e4, 1, 'stateless').name).toBe('memory per isolate')
    expect(clientsSaturatingD1(1e5, 'session')).toBeLessThan(clientsSaturatingD1(1e5, 'stateless'))
  })
})
