// vhd-util scan: list images matching -m PATTERN (expanded here, as blktap does) and FILES.
import { glob } from '../../../sdk/vhd/glob.js';
import { formatPretty, formatScanLine, scanTargets, type ScanOptions } from '../../../sdk/vhd/scan.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { EINVAL, has, last, out, parseArgs } from '../common.js';

const USAGE =
  'usage: [OPTIONS] FILES\n' +
  'options: [-m match filter] [-f fast] [-c continue on failure] [-l LVM volume] [-p pretty print] [-a scan parents] [-v verbose] [-h help] [-M show markers]\n';

export function run(argv: string[]): number | Promise<number> {
  const p = parseArgs({ name: 'scan', optstring: 'm:fcl:pavhM', usage: USAGE, helpExit: 0, positional: true }, argv);
  if (typeof p === 'number') return p;
  const pattern = last(p, 'm');
  if (pattern === undefined && p.positional.length === 0) {
    out(USAGE);
    return EINVAL;
  }
  const pretty = has(p, 'p');
  const opts = { fast: has(p, 'f') && !pretty, verbose: has(p, 'v'), markers: has(p, 'M'), parents: has(p, 'a'), pretty };
  const vg = last(p, 'l');
  if (vg !== undefined) return scanLvm(vg, [...(pattern !== undefined ? [pattern] : []), ...p.positional], opts, has(p, 'c'));
  // blktap passes GLOB_NOSORT in fast mode (directory order), sorts otherwise
  const targets = [...(pattern !== undefined ? glob(pattern, !opts.fast) : []), ...p.positional];
  const cont = has(p, 'c');
  const results = scanTargets(targets, opts, !cont);
  const lines = pretty ? formatPretty(results, opts) : results.map((r) => formatScanLine(r, opts));
  if (lines.length) out(lines.join('\n') + '\n');
  if (!cont) {
    const bad = results.find((r) => !r.ok && !r.fromParent);
    if (bad) return bad.errno ?? EINVAL;
  }
  return 0;
}

/** -l VG: images inside LVs, read from the PVs (always the fast, header-only path). */
async function scanLvm(vg: string, patterns: string[], opts: ScanOptions, cont: boolean): Promise<number> {
  const { scanVolumeGroup } = await import('../../../sdk/vhd/lvm-scan.js');
  let results;
  try {
    results = scanVolumeGroup(vg, patterns, opts, !cont);
  } catch (e) {
    out(`scan: volume group ${vg}: ${(e as Error).message}\n`);
    return errnoOf(e);
  }
  const lines = opts.pretty ? formatPretty(results, opts) : results.map((r) => formatScanLine(r, opts));
  if (lines.length) out(lines.join('\n') + '\n');
  if (!cont) {
    const bad = results.find((r) => !r.ok);
    if (bad) return bad.errno ?? EINVAL;
  }
  return 0;
}
