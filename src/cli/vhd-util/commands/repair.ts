// vhd-util repair: rewrite both footers at the computed end (from the copy with -b).
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { repair } from '../../../sdk/vhd/ops.js';
import { EINVAL, has, last, out, parseArgs } from '../common.js';

const USAGE = 'options: <-n name> <-b use the back-up footer> [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'repair', optstring: 'n:bh', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  try {
    repair(name, has(p, 'b'));
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    out(`error repairing ${name}: ${(e as Error).message}: -${n}\n`);
    return n;
  }
}
