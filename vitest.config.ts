import { defineConfig } from 'vitest/config'

// One `vitest run` runs both projects: plain Node, and the Worker inside workerd.
export default defineConfig({
  test: { projects: ['./vitest.node.config.ts', './vitest.workers.config.ts'] },
})
