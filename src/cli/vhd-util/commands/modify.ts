// vhd-util modify: re-parent (-p [-m]), set physical size (-s BYTES), kill data (-z).
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { killData, setParent, setPhysicalSize } from '../../../sdk/vhd/ops.js';
import { EINVAL, cNumber, has, last, out, parseArgs } from '../common.js';

const USAGE =
  '*** Dangerous operations, use with care ***\n' +
  'options: <-n name> [-p NEW_PARENT set parent [-m raw]] [-s NEW_SIZE set size] [-z zero (kill data)] [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'modify', optstring: 'n:p:ms:zh', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const parent = last(p, 'p');
  const size = last(p, 's');
  const zero = has(p, 'z');
  if (!name || (parent === undefined && size === undefined && !zero)) {
    out(USAGE);
    return EINVAL;
  }
  if (parent !== undefined) {
    try {
      setParent(name, parent, has(p, 'm'));
    } catch (e) {
      const n = errnoOf(e);
      out(`failed to set parent to '${parent}': -${n}\n`);
      return n;
    }
  }
  if (size !== undefined) {
    try {
      setPhysicalSize(name, cNumber(size));
    } catch (e) {
      const n = errnoOf(e);
      out(`failed to set physical size to ${size}: -${n}\n`);
      return n;
    }
  }
  if (zero) {
    try {
      killData(name);
    } catch (e) {
      const n = errnoOf(e);
      out(`failed to zero VHD ${name}: -${n}\n`);
      return n;
    }
  }
  return 0;
}
