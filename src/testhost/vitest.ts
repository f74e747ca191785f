// Vitest inside the test host: for test files whose cases need the guest kernel
// throughout (device-mapper, NFS) and read better as ordinary `it` blocks than as
// bash steps. Costs one boot plus a vitest start under emulation (tens of seconds).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../sdk/env.js';
import { bootOrThrow, TestHostError, type BootOptions } from './run.js';

/** True inside the guest (guest-init exports SM_TESTHOST_GUEST=1). */
export const inGuest = (): boolean => process.env['SM_TESTHOST_GUEST'] === '1';

export interface GuestTestCase {
  file: string;
  /** Suite titles and test title joined by spaces, as vitest prints them. */
  fullName: string;
  status: string;
  durationMs: number;
  failureMessages: string[];
}

export interface VitestRun {
  exitCode: number;
  cases: GuestTestCase[];
  /** vitest's own output (progress, errors outside tests). */
  stderr: string;
  bootSeconds: number | undefined;
  wallMs: number;
}

const jsonReport = z.object({
  testResults: z.array(
    z.object({
      name: z.string(),
      message: z.string().optional(),
      assertionResults: z.array(
        z.object({
          fullName: z.string(),
          status: z.string(),
          duration: z.number().nullish(),
          failureMessages: z.array(z.string()).default([]),
        }),
      ),
    }),
  ),
});

/**
 * Runs vitest on `files` (paths under the package) inside one guest and returns
 * every case's result. Throws TestHostError if the guest or vitest produced no report.
 */
export async function runVitestInTestHost(
  files: readonly string[],
  opts: BootOptions & { testNamePattern?: string } = {},
): Promise<VitestRun> {
  if (files.length === 0) throw new TypeError('runVitestInTestHost: give at least one test file');
  const rel = files.map((f) => {
    const abs = f.startsWith('file:') ? fileURLToPath(f) : isAbsolute(f) ? f : join(PACKAGE_ROOT, f);
    if (!existsSync(abs)) throw new TypeError(`runVitestInTestHost: no such test file: ${f}`);
    return relative(PACKAGE_ROOT, abs);
  });
  const argv = [
    process.execPath,
    join(PACKAGE_ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    ...rel,
    '--reporter=json',
    '--outputFile=/.testhost/io/vitest.json',
    ...(opts.testNamePattern === undefined ? [] : ['--testNamePattern', opts.testNamePattern]),
  ];
  const o = await bootOrThrow(argv, { ...opts, cwd: PACKAGE_ROOT }, {
    collect: (io) => readFile(join(io, 'vitest.json'), 'utf8').catch(() => undefined),
  });
  if (o.collected === undefined) {
    throw new TestHostError(`vitest in the test host exited ${o.exitCode} without a report:\n${o.stderr}${o.stdout}`);
  }
  const report = jsonReport.parse(JSON.parse(o.collected));
  const cases = report.testResults.flatMap((f) =>
    f.assertionResults.map((a) => ({
      file: relative(PACKAGE_ROOT, f.name),
      fullName: a.fullName,
      status: a.status,
      durationMs: a.duration ?? 0,
      failureMessages: a.failureMessages,
    })),
  );
  const fileErrors = report.testResults.filter((f) => f.message !== undefined && f.message !== '');
  if (fileErrors.length > 0 && cases.length === 0) {
    throw new TestHostError(`vitest in the test host could not run: ${fileErrors.map((f) => `${f.name}: ${f.message}`).join('\n')}`);
  }
  return { exitCode: o.exitCode, cases, stderr: o.stderr, bootSeconds: o.bootSeconds, wallMs: o.wallMs };
}

/**
 * A suite that runs only inside the test host. In the guest it is an ordinary
 * `describe`. On the host it becomes one test that boots the guest, runs this
 * file's suite there, and fails naming every guest case that failed; a suite
 * with no passing case fails too (nothing is skipped silently).
 *
 *   describeInTestHost('lvm activation', import.meta.url, () => { it(...); });
 */
export function describeInTestHost(title: string, fileUrl: string, body: () => void, timeoutMs = 600_000): void {
  if (inGuest()) {
    describe(title, body);
    return;
  }
  describe(title, () => {
    it('passes inside the test host', { timeout: timeoutMs }, async () => {
      const escaped = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // The boot may run as long as the host-side test waits for it.
      const r = await runVitestInTestHost([fileUrl], { testNamePattern: `^${escaped} `, config: { timeoutMs } });
      const failed = r.cases.filter((c) => c.status === 'failed');
      const passed = r.cases.filter((c) => c.status === 'passed');
      const report = failed.map((c) => `✗ ${c.fullName}\n${c.failureMessages.join('\n')}`).join('\n\n');
      expect(failed.length, `guest cases failed:\n${report}`).toBe(0);
      expect(passed.length, `no case passed in the guest:\n${r.stderr}`).toBeGreaterThan(0);
      expect(r.exitCode, r.stderr).toBe(0);
      console.log(`${title}: ${passed.length} case(s) passed in the test host (boot ${r.bootSeconds} s, wall ${r.wallMs} ms)`);
    });
  });
}
