// The test host's settings, read from the environment once per call so that a
// test can move any of them aside. Kept here rather than in src/sdk/env.ts: no
// driver reads them, only the test harness.
import { z } from 'zod';

export const BACKENDS = ['qemu', 'uml'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface TestHostConfig {
  /** uml: user-mode-linux with hostfs (default: five times faster than TCG for node). qemu: QEMU/TCG with virtio-9p. */
  backend: Backend;
  /** Cache of kernel + initramfs: $SM_TESTHOST_DIR, default /var/tmp/smapi-testhost/<backend>. */
  cacheDir: string;
  /** Guest memory in MiB ($SM_TESTHOST_MEM, default 2048). */
  memMiB: number;
  /** Guest CPUs ($SM_TESTHOST_CPUS, default 2; user-mode-linux always has 1). */
  cpus: number;
  /** Wall-clock limit of one boot, in ms ($SM_TESTHOST_TIMEOUT in seconds, default 600). */
  timeoutMs: number;
  /** Size of the tmpfs holding the guest's writes ($SM_TESTHOST_RWSIZE, default 4g). */
  rwSize: string;
  /** Keep the per-run directory (console log, job files) for debugging ($SM_TESTHOST_KEEP=1). */
  keepRunDir: boolean;
}

const positiveInt = (name: string) =>
  z.coerce
    .number({ error: `${name} must be a whole number` })
    .int(`${name} must be a whole number`)
    .positive(`${name} must be greater than 0`);

const fromEnvSchema = z.object({
  SM_TESTHOST_BACKEND: z
    .enum(BACKENDS, { error: (i) => `SM_TESTHOST_BACKEND=${String(i.input)} is not one of: ${BACKENDS.join(', ')}` })
    .default('uml'),
  SM_TESTHOST_DIR: z.string().min(1).optional(),
  SM_TESTHOST_MEM: positiveInt('SM_TESTHOST_MEM (MiB)').default(2048),
  SM_TESTHOST_CPUS: positiveInt('SM_TESTHOST_CPUS').max(64).default(2),
  SM_TESTHOST_TIMEOUT: positiveInt('SM_TESTHOST_TIMEOUT (seconds)').default(600),
  SM_TESTHOST_RWSIZE: z
    .string()
    .regex(/^[0-9]+[kmgKMG%]?$/, 'SM_TESTHOST_RWSIZE must be a tmpfs size such as 4g, 512m or 50%')
    .default('4g'),
  SM_TESTHOST_KEEP: z.enum(['', '0', '1']).default('0'),
});

export class TestHostConfigError extends Error {
  override name = 'TestHostConfigError';
}

/** The configuration from `environ` (default: process.env), with `overrides` on top. */
export function testHostConfig(
  overrides: Partial<TestHostConfig> = {},
  environ: NodeJS.ProcessEnv = process.env,
): TestHostConfig {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(fromEnvSchema.shape)) {
    const v = environ[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const parsed = fromEnvSchema.safeParse(picked);
  if (!parsed.success) {
    throw new TestHostConfigError(parsed.error.issues.map((i) => i.message).join('; '));
  }
  const e = parsed.data;
  const backend = overrides.backend ?? e.SM_TESTHOST_BACKEND;
  return {
    backend,
    cacheDir: overrides.cacheDir ?? e.SM_TESTHOST_DIR ?? `/var/tmp/smapi-testhost/${backend}`,
    memMiB: overrides.memMiB ?? e.SM_TESTHOST_MEM,
    cpus: overrides.cpus ?? e.SM_TESTHOST_CPUS,
    timeoutMs: overrides.timeoutMs ?? e.SM_TESTHOST_TIMEOUT * 1000,
    rwSize: overrides.rwSize ?? e.SM_TESTHOST_RWSIZE,
    keepRunDir: overrides.keepRunDir ?? e.SM_TESTHOST_KEEP === '1',
  };
}
