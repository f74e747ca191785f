// The conformance suite run inside the test host (testhost/conformance-suites.sh)
// against a driver that needs what only the guest has (device-mapper, NFS), and
// the checks a CI run makes of its report.
import { expect } from 'vitest';
import type { SuiteReport } from '../../conformance/types.js';
import { runInTestHostWithOutput } from '../../src/testhost/index.js';
import { failures, ROOT } from './helpers.js';

/** A guest that has not reported by then is killed (the test fails with its console). */
export const GUEST_TIMEOUT_MS = 3_300_000;

export interface GuestSuiteRun {
  report: SuiteReport;
  /** The table as sm-conformance printed it in the guest. */
  log: string;
  exitCode: number;
  wallMs: number;
  bootSeconds: number | undefined;
}

/**
 * Boots the test host and runs sm-conformance against drivers/<type>/ on storage
 * made there (see testhost/conformance-suites.sh); `args` go to sm-conformance
 * (e.g. --only). Throws, with the guest's output, if no report came back.
 */
export async function conformanceInTestHost(type: 'ext' | 'nfs' | 'lvm', args: readonly string[] = [], guestTimeoutMs = GUEST_TIMEOUT_MS): Promise<GuestSuiteRun> {
  const r = await runInTestHostWithOutput(['testhost/conformance-suites.sh', type, '--', ...args], { cwd: ROOT, config: { timeoutMs: guestTimeoutMs } });
  const json = r.files.get(`${type}.json`);
  if (!json) throw new Error(`sm-conformance in the test host wrote no ${type}.json (exit ${r.exitCode})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return {
    report: JSON.parse(json.toString('utf8')) as SuiteReport,
    log: r.files.get(`${type}.log`)?.toString('utf8') ?? '',
    exitCode: r.exitCode,
    wallMs: r.wallMs,
    bootSeconds: r.bootSeconds,
  };
}

/**
 * What a CI run requires of a report: nothing failed, every scenario in `mustPass`
 * ran and passed, and the skips are exactly `skips` (id → reason): a new skip is
 * a failure here, never a quiet pass.
 */
export function expectConforms(run: GuestSuiteRun, mustPass: readonly string[], skips: Readonly<Record<string, string>>): void {
  const { report } = run;
  expect(failures(report), run.log).toBe('');
  expect(run.exitCode, run.log).toBe(0);
  const status = new Map(report.results.map((r) => [r.id, r] as const));
  for (const id of mustPass) expect(status.get(id)?.status, `${id} in\n${run.log}`).toBe('pass');
  const skipped = Object.fromEntries(report.results.filter((r) => r.status === 'skip').map((r) => [r.id, r.reason ?? '']));
  expect(skipped).toEqual(skips);
  // The count line agrees with the results: skips are counted as skips.
  expect(report.summary).toEqual({ passed: mustPass.length, failed: 0, skipped: Object.keys(skips).length });
}
