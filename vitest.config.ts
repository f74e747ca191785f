import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real tools, loop devices and test-host boots: generous per-test time, and
    // forks so a test that changes process state (env, cwd) cannot leak into another.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
