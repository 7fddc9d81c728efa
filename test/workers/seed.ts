import { env } from 'cloudflare:workers'

/** Runs scripts/seed-d1.ts's statements on the test's D1, as `wrangler d1 execute --file` would. */
export async function seed(): Promise<void> {
  await env.DB.batch(env.TEST_SEED_SQL.map((sql) => env.DB.prepare(sql)))
}

/** Request headers with a seeded key. */
export const auth = (role: 'admin' | 'client'): Record<string, string> => ({
  authorization: `Bearer ${env.TEST_KEYS[role]}`,
})
