// The three outputs: progress lines and a summary for people, JUnit XML for CI,
// and JSON (the whole report, evidence included) for scripts.
import { replacer } from './context.js';
import type { CallRecord, ScenarioResult, SuiteReport } from './types.js';

const COLOURS = { pass: '\x1b[32m', fail: '\x1b[31m', skip: '\x1b[33m' } as const;
const RESET = '\x1b[0m';

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}

/** One line per finished scenario: STATUS  id  duration  reason. */
export function progressLine(r: ScenarioResult, colour: boolean, idWidth = 34): string {
  const label = r.status.toUpperCase();
  const status = colour ? `${COLOURS[r.status]}${label}${RESET}` : label;
  const reason = r.reason ? `  ${r.reason.split('\n')[0]}` : '';
  return `${status}  ${r.id.padEnd(idWidth)} ${seconds(r.durationMs).padStart(8)}${reason}`;
}

function indent(text: string, by = '      '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export function describeCall(c: CallRecord): string {
  const lines = [`${c.command}: ${c.ok ? 'ok' : 'FAILED'} (${c.durationMs} ms)`, 'request:', indent(c.requestXml || '(not sent)', '  ')];
  if (c.ok) lines.push('response:', indent(JSON.stringify(c.response, replacer, 2) ?? 'null', '  '));
  if (c.fault) lines.push(`fault: ${c.fault.faultCode} (${c.fault.faultName}): ${c.fault.faultString}`);
  if (c.error) lines.push(`error: ${c.error}`);
  if (c.stderr?.trim()) lines.push('stderr:', indent(c.stderr.trim(), '  '));
  return lines.join('\n');
}

/** The failures with their evidence, then the closing count line. */
export function summaryText(report: SuiteReport): string {
  const out: string[] = [];
  const failed = report.results.filter((r) => r.status === 'fail');
  if (failed.length > 0) {
    out.push('', 'Failures:');
    for (const f of failed) {
      out.push('', `  ${f.id}: ${f.reason ?? ''}`);
      if (f.evidence) {
        out.push(`    expected: ${f.evidence.expected}`, `    actual:   ${f.evidence.actual.split('\n').join('\n              ')}`);
        for (const c of f.evidence.calls) out.push(indent(describeCall(c)));
      }
    }
  }
  const { passed, failed: nf, skipped } = report.summary;
  if (report.calls) out.push('', timingText(report));
  out.push('', `${passed} passed, ${nf} failed, ${skipped} skipped`);
  return out.join('\n');
}

/** Where the suite's time went: driver calls (count, mean, the costliest commands) against the whole run. */
export function timingText(report: SuiteReport): string {
  const c = report.calls;
  if (!c) return '';
  const mean = c.count > 0 ? c.totalMs / c.count : 0;
  const top = Object.entries(c.byCommand)
    .sort((a, b) => b[1].totalMs - a[1].totalMs)
    .slice(0, 4)
    .map(([cmd, b]) => `${cmd} ${b.count}x ${seconds(b.totalMs / b.count)}`)
    .join(', ');
  return `${c.count} driver calls: ${seconds(c.totalMs)} of the ${seconds(report.durationMs)} run, mean ${seconds(mean)} (most time: ${top})`;
}

function xml(s: string): string {
  // Characters XML 1.0 cannot hold are dropped; the rest escaped.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function junitXml(report: SuiteReport): string {
  const { passed, failed, skipped } = report.summary;
  const total = passed + failed + skipped;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="sm-conformance" tests="${total}" failures="${failed}" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="sm-conformance ${xml(report.type)}" tests="${total}" failures="${failed}" errors="0" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}" timestamp="${report.startedAt}">`,
    `    <properties><property name="driver" value="${xml(report.driver)}"/></properties>`,
  ];
  for (const r of report.results) {
    const open = `    <testcase classname="sm-conformance.${xml(report.type)}" name="${xml(r.id)}" time="${(r.durationMs / 1000).toFixed(3)}"`;
    if (r.status === 'pass') lines.push(`${open}/>`);
    else if (r.status === 'skip') lines.push(`${open}>`, `      <skipped message="${xml(r.reason ?? '')}"/>`, '    </testcase>');
    else {
      const body = r.evidence ? [`expected: ${r.evidence.expected}`, `actual: ${r.evidence.actual}`, ...r.evidence.calls.map(describeCall)].join('\n\n') : '';
      lines.push(`${open}>`, `      <failure message="${xml(r.reason ?? '')}" type="ConformanceFailure">${xml(body)}</failure>`, '    </testcase>');
    }
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

export function jsonReport(report: SuiteReport): string {
  return `${JSON.stringify(report, replacer, 2)}\n`;
}
