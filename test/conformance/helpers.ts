// Shared by the conformance-suite tests: a scratch SR directory per run, and
// the suite run in-process against a driver executable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_SIZES, type SuiteConfig } from '../../conformance/config.js';
import { jsonReport } from '../../conformance/report.js';
import { runSuite } from '../../conformance/runner.js';
import type { ImageFormat } from '../../src/driver-info.js';
import type { ScenarioResult, SuiteReport } from '../../conformance/types.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const PYSR = join(ROOT, 'test/fixtures/python-driver/PySR');
export const FILESR = join(ROOT, 'drivers/file/FileSR');
export const LVMSR = join(ROOT, 'drivers/lvm/LVMSR');
export const BROKEN = join(ROOT, 'test/fixtures/broken-drivers');
export const CLI = join(ROOT, 'bin/sm-conformance');

/** A run against `driver` with a fresh SR directory, removed afterwards; the report as its JSON (--json) reads. */
export async function runAgainst(
  driver: string,
  o: { formats?: ImageFormat[]; only?: string[]; sizes?: bigint[]; deviceConfig?: Record<string, string> } = {},
): Promise<SuiteReport> {
  const dir = mkdtempSync(join(tmpdir(), 'conformance-sr-'));
  try {
    const config: SuiteConfig = {
      deviceConfig: o.deviceConfig ?? { location: join(dir, 'sr') },
      sizes: o.sizes ?? [...DEFAULT_SIZES],
      ...(o.formats ? { formats: o.formats } : {}),
    };
    const report = await runSuite({ driver, config, ...(o.only ? { only: o.only } : {}) });
    return JSON.parse(jsonReport(report)) as SuiteReport;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function result(report: SuiteReport, id: string): ScenarioResult {
  const r = report.results.find((x) => x.id === id);
  if (!r) throw new Error(`no result ${id}; have ${report.results.map((x) => x.id).join(', ')}`);
  return r;
}

/** Readable failure list for assertion messages. */
export function failures(report: SuiteReport): string {
  return report.results
    .filter((r) => r.status === 'fail')
    .map((r) => `${r.id}: ${r.reason}\n  expected: ${r.evidence?.expected}\n  actual: ${r.evidence?.actual}`)
    .join('\n');
}
