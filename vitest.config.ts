import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Suites start real servers and SQLite files; two workers match the 2-core machines.
    maxWorkers: 2,
    env: { PROXY_KEYCHAIN: 'off' },
  },
})
