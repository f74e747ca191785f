// sm-conformance: plays the toolstack against an SMAPIv1 driver executable and
// reports what conforms. Exit status: 0 nothing failed, 1 something failed,
// 2 bad usage.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_SIZES, loadConfigFile, parseConfigText, type SuiteConfig } from '../../../conformance/config.js';
import { combinedSummary, loadReport, reportTable } from '../../../conformance/combined.js';
import { jsonReport, junitXml, progressLine, summaryText } from '../../../conformance/report.js';
import { runSuite } from '../../../conformance/runner.js';
import { SCENARIOS } from '../../../conformance/scenarios/index.js';

export const USAGE = `Usage: sm-conformance --driver PATH [--config FILE] [options]
       sm-conformance --report FILE [--report FILE]...

Runs the SMAPIv1 conformance scenarios against one driver executable (any
language), the way xapi calls it, in an isolated state database.

  --driver PATH             the plug-in executable; its SR type is the file name
                            without SR, lower-cased (FileSR -> file)
  --config FILE             SR configuration (YAML): type, device-config (map),
                            sizes (list of bytes or sizes like 1MiB), formats (list)
  --device-config KEY=VALUE device-config entry (repeatable; overrides the file)
  --size SIZE               a VDI size for vdi-create (repeatable; default
                            ${DEFAULT_SIZES.join(', ')})
  --format FMT              test only this image format (repeatable: vhd, qcow2, raw)
  --only ID                 run only scenarios whose id contains ID (repeatable)
  --timeout SECONDS         per driver call (default 300)
  --junit FILE              write a JUnit XML report
  --json FILE               write the JSON report (with evidence)
  --list                    list the scenarios and exit
  --report FILE             instead of running: show saved JSON reports (repeatable),
                            each as a table, then a combined summary; exit 1 if any
                            failed or is missing
  -h, --help                this text

Each scenario passes, fails with evidence (request sent, response or fault,
what was expected), or is skipped with the reason (a capability or format the
driver does not declare). Skips never count as passes. Exit status 0 only if
nothing failed.

Example config:
  type: file
  device-config:
    location: /srv/conformance-sr
  sizes: [1, 1048577, 2097153, 2098688]
  formats: [vhd, qcow2]
`;

class Usage extends Error {}

function buildConfig(values: Record<string, unknown>): SuiteConfig {
  const base: SuiteConfig = typeof values['config'] === 'string' ? loadConfigFile(values['config']) : { deviceConfig: {}, sizes: [...DEFAULT_SIZES] };
  const dc = { ...base.deviceConfig };
  for (const kv of (values['device-config'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Usage(`--device-config ${JSON.stringify(kv)}: expected KEY=VALUE`);
    dc[kv.slice(0, i)] = kv.slice(i + 1);
  }
  // Flags go through the same validation as the file.
  const extra: string[] = [];
  const sizes = values['size'] as string[] | undefined;
  const formats = values['format'] as string[] | undefined;
  if (sizes) extra.push(`sizes: ${JSON.stringify(sizes)}`);
  if (formats) extra.push(`formats: ${JSON.stringify(formats)}`);
  const fromFlags = extra.length > 0 ? parseConfigText(extra.join('\n'), 'command line') : undefined;
  return {
    ...base,
    deviceConfig: dc,
    sizes: sizes && fromFlags ? fromFlags.sizes : base.sizes,
    ...(formats && fromFlags?.formats ? { formats: fromFlags.formats } : {}),
  };
}

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        driver: { type: 'string' },
        config: { type: 'string' },
        'device-config': { type: 'string', multiple: true },
        size: { type: 'string', multiple: true },
        format: { type: 'string', multiple: true },
        only: { type: 'string', multiple: true },
        timeout: { type: 'string' },
        junit: { type: 'string' },
        json: { type: 'string' },
        list: { type: 'boolean' },
        report: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    err.write(`sm-conformance: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values['help']) {
    out.write(USAGE);
    return 0;
  }
  if (values['list']) {
    for (const s of SCENARIOS) out.write(`${s.id.padEnd(32)} ${s.perFormat ? '(per format) ' : ''}${s.title}\n`);
    return 0;
  }
  if (values['report']) {
    const loaded = (values['report'] as string[]).map(loadReport);
    for (const l of loaded) out.write(`${reportTable(l)}\n`);
    const combined = combinedSummary(loaded);
    out.write(`Combined summary\n${combined.text}`);
    return combined.failed ? 1 : 0;
  }
  let config: SuiteConfig;
  let timeoutMs: number | undefined;
  try {
    if (typeof values['driver'] !== 'string') throw new Usage('--driver PATH is required');
    config = buildConfig(values);
    if (values['timeout'] !== undefined) {
      const t = Number(values['timeout']);
      if (!Number.isFinite(t) || t <= 0) throw new Usage(`--timeout ${JSON.stringify(values['timeout'])}: expected a positive number of seconds`);
      timeoutMs = t * 1000;
    }
  } catch (e) {
    err.write(`sm-conformance: ${(e as Error).message}\n`);
    return 2;
  }
  const colour = Boolean((out as NodeJS.WriteStream).isTTY);
  let report;
  try {
    out.write(`sm-conformance: ${values['driver'] as string}\n\n`);
    if (colour) out.write(`\x1b[1m${'RESULT'.padEnd(6)}${'SCENARIO'.padEnd(35)}${'TIME'.padStart(8)}  REASON\x1b[0m\n`);
    report = await runSuite({
      driver: values['driver'] as string,
      config,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(values['only'] ? { only: values['only'] as string[] } : {}),
      onResult: (r) => out.write(`${progressLine(r, colour)}\n`),
    });
  } catch (e) {
    err.write(`sm-conformance: ${(e as Error).message}\n`);
    return 2;
  }
  if (typeof values['junit'] === 'string') writeFileSync(values['junit'], junitXml(report));
  if (typeof values['json'] === 'string') writeFileSync(values['json'], jsonReport(report));
  out.write(`${summaryText(report)}\n`);
  return report.summary.failed === 0 ? 0 : 1;
}
