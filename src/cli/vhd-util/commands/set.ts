// vhd-util set: the hidden flag (footer byte 85) or the batmap marker.
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { setHidden, setMarker } from '../../../sdk/vhd/ops.js';
import { EINVAL, last, out, parseArgs } from '../common.js';

const USAGE = 'options: <-n name> <-f field> <-v value> [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'set', optstring: 'n:f:v:h', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  const field = last(p, 'f');
  const value = last(p, 'v');
  if (!name || !field || value === undefined) {
    out(USAGE);
    return EINVAL;
  }
  if (field !== 'hidden' && field !== 'marker') {
    out(`invalid field ${field}\n${USAGE}`);
    return EINVAL;
  }
  const v = /^\d+$/.test(value) ? Number(value) : -1;
  if (v < 0 || v > 255) {
    out(`invalid value ${value}\n${USAGE}`);
    return EINVAL;
  }
  try {
    if (field === 'hidden') setHidden(name, v);
    else setMarker(name, v);
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    out(`error setting ${field} on ${name}: ${(e as Error).message}: -${n}\n`);
    return n;
  }
}
