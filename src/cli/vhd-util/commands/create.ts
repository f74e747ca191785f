// vhd-util create: new dynamic (or fixed with -r) VHD.
import { createVhd } from '../../../sdk/vhd/create.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { EINVAL, cNumber, err, has, last, out, parseArgs } from '../common.js';

const USAGE =
  'options: <-n name> <-s size (MB)> [-r reserve] [-h help] [<-S size (MB) for metadata preallocation (see vhd-util resize)>]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'create', optstring: 'n:s:rhS:', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const size = last(p, 's');
  if (!name || size === undefined) {
    out(USAGE);
    return EINVAL;
  }
  const sizeMiB = cNumber(size);
  const ms = last(p, 'S');
  const metadataMiB = ms === undefined ? undefined : cNumber(ms);
  if (metadataMiB !== undefined && metadataMiB < sizeMiB) {
    out('Error: <-S size> must be greater than <-s size>\n');
    return EINVAL;
  }
  if (sizeMiB < 0) {
    out(`invalid size ${size}\n`);
    return EINVAL;
  }
  try {
    createVhd(name, sizeMiB, { fixed: has(p, 'r'), ...(metadataMiB !== undefined ? { metadataMiB } : {}) });
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    err(`${name}: failed to create: -${n}\n`);
    return n;
  }
}
