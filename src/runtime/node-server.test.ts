import { describe, expect, it } from 'vitest'
import { BodyBudget, defaultNodeLimits, nodeLimitsFrom } from './node-server'

describe('nodeLimitsFrom', () => {
  it('takes flags over variables over defaults, with megabytes for the body budget', () => {
    expect(nodeLimitsFrom({}, {})).toEqual(defaultNodeLimits)
    expect(
      nodeLimitsFrom(
        { 'queue-per-client': '3' },
        { L2O_QUEUE_PER_CLIENT: '5', L2O_QUEUE_TOTAL: '7', L2O_BODY_BUDGET_MB: '2' },
      ),
    ).toEqual({ ...defaultNodeLimits, queuePerClient: 3, queueTotal: 7, bodyBudgetBytes: 2 * 1024 * 1024 })
  })

  it('refuses a limit that is not a whole number of at least 1', () => {
    expect(() => nodeLimitsFrom({ 'body-timeout-ms': '0' }, {})).toThrow(/--body-timeout-ms/)
    expect(() => nodeLimitsFrom({}, { L2O_QUEUE_TOTAL: 'many' })).toThrow(/L2O_QUEUE_TOTAL/)
  })
})

describe('BodyBudget', () => {
  it('holds reservations until released, and refuses past its bytes with 503', () => {
    const budget = new BodyBudget(100)
    const release = budget.reserve(60)
    expect(() => budget.reserve(41)).toThrow(expect.objectContaining({ status: 503, code: 'overloaded' }))
    release()
    release()
    expect(budget.heldBytes).toBe(0)
    budget.reserve(100)
    expect(budget.heldBytes).toBe(100)
  })
})
