// vhd-util revert: roll a VHD back from a resize journal and delete the journal.
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { revertFromJournal } from '../../../sdk/vhd/resize.js';
import { EINVAL, last, out, parseArgs } from '../common.js';

const USAGE = 'options: <-n name> <-j journal> [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'revert', optstring: 'n:j:h', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const journal = last(p, 'j');
  if (!name || !journal) {
    out(USAGE);
    return EINVAL;
  }
  try {
    revertFromJournal(name, journal);
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    const msg = (e as Error).message;
    out(msg === 'opening journal failed' ? `opening journal failed: -${n}\n` : `reverting ${name} failed: ${msg}: -${n}\n`);
    return n;
  }
}
