// The test-host API for tests: run commands or many named steps as root in a
// throw-away Linux guest that has device-mapper, loop, ext4 and NFS client/server.
export { testHostConfig, TestHostConfigError, type Backend, type TestHostConfig } from './config.js';
export { ensureTestHost, prepareTestHost, type PreparedTestHost } from './prepare.js';
export {
  bootTestHost,
  runInTestHost,
  NOT_REPORTED,
  TestHostError,
  type BootOptions,
  type BootOutcome,
  type RunResult,
} from './run.js';
export {
  runStepsInTestHost,
  assertStepPassed,
  type TestHostStep,
  type StepResult,
  type StepsOptions,
  type StepsRun,
} from './steps.js';
export { runInTestHostWithOutput, GUEST_OUT_DIR, GUEST_OUT_ENV, type RunWithOutput } from './out-dir.js';
export { nfsServerScript, loopPvScript } from './guest-helpers.js';
// Vitest helpers (runVitestInTestHost, describeInTestHost) live in ./vitest.js: they import vitest.
