// Several saved JSON reports (one per driver, e.g. the main job's file driver on
// this host and ext/nfs in the test host) shown together: each report's table,
// then one combined summary. A report that is missing or unreadable is a row of
// its own and counts as a failure: a suite that never reported did not pass.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { progressLine, seconds, timingText } from './report.js';
import type { SuiteReport } from './types.js';

const countsSchema = z.object({ passed: z.number().int(), failed: z.number().int(), skipped: z.number().int() });
const reportSchema = z.object({
  driver: z.string(),
  type: z.string(),
  startedAt: z.string(),
  durationMs: z.number(),
  results: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      status: z.enum(['pass', 'fail', 'skip']),
      durationMs: z.number(),
      reason: z.string().optional(),
    }),
  ),
  summary: countsSchema,
  calls: z
    .object({ count: z.number().int(), totalMs: z.number(), byCommand: z.record(z.string(), z.object({ count: z.number().int(), totalMs: z.number() })) })
    .optional(),
});

export type LoadedReport = { path: string; report: SuiteReport } | { path: string; error: string };

export function loadReport(path: string): LoadedReport {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { path, error: `no report: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { path, error: `${path} is not JSON: ${(e as Error).message}` };
  }
  const r = reportSchema.safeParse(parsed);
  if (!r.success) return { path, error: `${path} is not an sm-conformance JSON report: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { path, report: r.data as SuiteReport };
}

/** One report as the terminal showed it while it ran: a line per scenario, where the time went, the counts. */
export function reportTable(l: LoadedReport, colour = false): string {
  if ('error' in l) return `== ${l.path}\n${l.error}\n`;
  const r = l.report;
  const lines = [`== ${r.type}: ${r.driver} (${seconds(r.durationMs)})`, ...r.results.map((x) => progressLine(x, colour))];
  if (r.calls) lines.push(timingText(r));
  lines.push(`${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.skipped} skipped`);
  return `${lines.join('\n')}\n`;
}

/** The combined summary: one row per report and a total; `failed` counts a missing report. */
export function combinedSummary(loaded: readonly LoadedReport[]): { text: string; failed: boolean } {
  const rows: string[][] = [['TYPE', 'PASSED', 'FAILED', 'SKIPPED', 'TIME', 'CALLS', 'NOTE']];
  const total = { passed: 0, failed: 0, skipped: 0, ms: 0, calls: 0 };
  let failed = false;
  // The same SR type run twice (the main job's lvm on this host and in the test
  // host) is told apart by its report's file name.
  const typeCount = new Map<string, number>();
  for (const l of loaded) if (!('error' in l)) typeCount.set(l.report.type, (typeCount.get(l.report.type) ?? 0) + 1);
  for (const l of loaded) {
    if ('error' in l) {
      failed = true;
      rows.push(['?', '-', '-', '-', '-', '-', l.error]);
      continue;
    }
    const { summary: s, durationMs, calls } = l.report;
    if (s.failed > 0) failed = true;
    total.passed += s.passed;
    total.failed += s.failed;
    total.skipped += s.skipped;
    total.ms += durationMs;
    total.calls += calls?.count ?? 0;
    const failedIds = l.report.results.filter((x) => x.status === 'fail').map((x) => x.id);
    const label = (typeCount.get(l.report.type) ?? 0) > 1 ? `${l.report.type} (${basename(l.path, '.json')})` : l.report.type;
    rows.push([label, String(s.passed), String(s.failed), String(s.skipped), seconds(durationMs), String(calls?.count ?? '-'), failedIds.length > 0 ? `failed: ${failedIds.join(', ')}` : '']);
  }
  rows.push(['total', String(total.passed), String(total.failed), String(total.skipped), seconds(total.ms), String(total.calls), failed ? 'FAILED' : 'all passed (skips are not passes)']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const text = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
  return { text: `${text}\n`, failed };
}
