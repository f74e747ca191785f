// vhd-util snapshot: new differencing disk on top of a parent.
import { snapshotVhd } from '../../../sdk/vhd/create.js';
import { ENOSPC, errnoOf } from '../../../sdk/vhd/errors.js';
import { EINVAL, cNumber, err, has, last, out, parseArgs } from '../common.js';

const USAGE =
  "options: <-n name> <-p parent name> [-l snapshot depth limit] [-m parent_is_raw] [-S size (MB) for metadata preallocation (see vhd-util resize)] [-e link to supplied parent name even if it's empty] [-h help]\n";

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'snapshot', optstring: 'n:p:l:mS:eh', usage: USAGE, helpExit: 0 }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const parent = last(p, 'p');
  if (!name || !parent) {
    out(USAGE);
    return EINVAL;
  }
  const l = last(p, 'l');
  const S = last(p, 'S');
  try {
    snapshotVhd(name, parent, {
      rawParent: has(p, 'm'),
      linkEmpty: has(p, 'e'),
      ...(l !== undefined ? { depthLimit: cNumber(l) } : {}),
      ...(S !== undefined ? { metadataMiB: cNumber(S) } : {}),
    });
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    // blktap is silent here except for the depth limit; our reason goes to stderr
    if (n === ENOSPC) out(`${(e as Error).message}\n`);
    else err(`snapshot: ${(e as Error).message}\n`);
    return n;
  }
}
