// vhd-util export (smapi-ts extension, not in blktap): chain-resolved content as raw.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { exportRaw } from '../../../sdk/vhd/data-io.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { EINVAL, last, out, parseArgs } from '../common.js';

const USAGE =
  'smapi-ts extension (not in blktap): write the chain-resolved virtual disk as raw bytes (sparse when the output is a file)\n' +
  'options: <-n name> [-o output file, - for stdout (default)] [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'export', optstring: 'n:o:h', usage: USAGE, helpExit: 0 }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  const target = last(p, 'o') ?? '-';
  let fd = 1;
  try {
    if (target !== '-') fd = openSync(target, 'w', 0o644);
    const seekable = fstatSync(fd).isFile();
    exportRaw(name, fd, seekable);
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    out(`error exporting ${name}: ${(e as Error).message}: -${n}\n`);
    return n;
  } finally {
    if (fd !== 1) closeSync(fd);
  }
}
