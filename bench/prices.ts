/**
 * Cloudflare's documented prices that bench:cost uses, in USD: named, dated, and the one place to
 * change them. Marginal prices (beyond what a plan includes) are what a coordinate-step costs.
 * Storage for sessions (D1 rows today, Durable Objects once issue 14 lands) is not priced here.
 */

/** When the prices below were read, and where. */
export const pricesReadOn = '2026-11-29'
export const pricesSource =
  'https://developers.cloudflare.com/workflows/reference/pricing/ (Workflows are billed "identical to Workers ' +
  'Standard pricing"; its table gives the per-request and per-CPU-ms prices below); the $5 base is the ' +
  "Workers Paid plan's as transcriptions of workers/platform/pricing quote it (it does not enter a marginal price)"

/** Workers Paid: the plan's base and its per-request and per-CPU-millisecond prices. */
export const workersPaid = {
  /** USD a month for the plan. */
  monthlyBase: 5,
  /** Requests included a month, then the price per million more. */
  includedRequestsPerMonth: 10_000_000,
  perMillionRequests: 0.3,
  /** CPU milliseconds included a month, then the price per million more. */
  includedCpuMsPerMonth: 30_000_000,
  perMillionCpuMs: 0.02,
}
