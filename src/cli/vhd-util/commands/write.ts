// vhd-util write (smapi-ts extension, not in blktap): write bytes into a VHD.
import { closeSync, openSync } from 'node:fs';
import { fdSource, writeBytes } from '../../../sdk/vhd/data-io.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { EINVAL, last, out, parseArgs } from '../common.js';

const USAGE =
  'smapi-ts extension (not in blktap): write data into a VHD, allocating blocks and updating bitmaps, batmap and footers\n' +
  'options: <-n name> <-o offset (bytes)> [-f file to read, - for stdin (default)] [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'write', optstring: 'n:o:f:h', usage: USAGE, helpExit: 0 }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const offStr = last(p, 'o');
  if (!name || offStr === undefined) {
    out(USAGE);
    return EINVAL;
  }
  if (!/^\d+$/.test(offStr)) {
    out(`invalid offset '${offStr}': expected a decimal number of bytes\n`);
    return EINVAL;
  }
  const file = last(p, 'f') ?? '-';
  const fd = file === '-' ? 0 : openSync(file, 'r');
  try {
    writeBytes(name, Number(offStr), fdSource(fd));
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    out(`error writing ${name}: ${(e as Error).message}: -${n}\n`);
    return n;
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}
