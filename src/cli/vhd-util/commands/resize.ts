// vhd-util resize: journaled offline resize (-j) or fast growth within the preallocated BAT (-f).
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { resizeFast, resizeJournaled } from '../../../sdk/vhd/resize.js';
import { EINVAL, cNumber, err, has, last, out, parseArgs } from '../common.js';

const USAGE = `options: <-n name> <-s size (in MB)> (<-j journal>|<-f fast>) [-h help]

The resize operation can only be performed offline and must be journaled because resizing the metadata might require moving data blocks. However, if a VHD was created with -S <msize> option (during vhd-util create/snapshot), which preallocates the metadata for growing the VHD up to size <msize>, then resizing such a VHD up to <msize> can be performed online without journaling (-f option).
`;

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'resize', optstring: 'n:s:j:fh', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const size = last(p, 's');
  const journal = last(p, 'j');
  const fast = has(p, 'f');
  if (!name || size === undefined || (journal === undefined) === !fast) {
    out(USAGE);
    return EINVAL;
  }
  try {
    if (fast) resizeFast(name, cNumber(size));
    else resizeJournaled(name, cNumber(size), journal!);
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    const msg = (e as Error).message;
    if (fast && msg.includes('beyond the preallocated')) err(`${msg}\n`); // blktap: syslog only
    else out(`${msg}\n`);
    if (!fast) out(`resize failed: -${n}\n`);
    return n;
  }
}
