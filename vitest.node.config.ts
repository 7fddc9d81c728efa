import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    name: 'node',
    include: [
      'src/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
      'scripts/**/*.test.ts',
      'console/*.test.ts',
    ],
    exclude: ['test/workers/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
