import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real tools, loop devices and test-host boots: generous per-test time, and
    // forks so a test that changes process state (env, cwd) cannot leak into another.
    pool: 'forks',
    // Two files at a time on the 2-core machine: a test-host file keeps about one
    // core busy (the guest mostly runs one process under emulation) while host
    // files run beside it. Tests own their scratch state (temp dirs, loop devices,
    // SM_* variables), so files do not share anything that would need ordering.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
