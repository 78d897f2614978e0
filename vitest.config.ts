import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // PGlite takes a few seconds to start in a worker on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
