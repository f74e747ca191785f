// vhd-util coalesce: merge a differencing disk into its immediate parent.
import { ENOENT, errnoOf } from '../../../sdk/vhd/errors.js';
import { coalesce } from '../../../sdk/vhd/ops.js';
import { EINVAL, has, last, out, parseArgs } from '../common.js';

const USAGE = 'options: <-n name> [-s sparse] [-p progress] [-h help]\n';

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'coalesce', optstring: 'n:sph', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  const sparse = has(p, 's');
  if (sparse) out('opening for sparse writes\n');
  let lastPct = -1;
  const progress = has(p, 'p')
    ? (f: number) => {
        const pct = Math.floor(f * 10000) / 100;
        if (pct === lastPct) return;
        lastPct = pct;
        out(`\r${pct.toFixed(2).padStart(6)}%${f >= 1 ? '\n' : ''}`);
      }
    : undefined;
  try {
    const n = coalesce(name, { sparse, ...(progress ? { progress } : {}) });
    // blktap prints this without a trailing newline; sm matches ^Coalesced (\d+) sectors
    out(`Coalesced ${n} sectors`);
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    const msg = (e as Error).message;
    if (msg.startsWith('coalescing of non-differencing')) out(`${msg}\n`);
    else if (n === ENOENT) out(`error finding ${name} parent: -${n}\n`);
    else out(`${msg}\n`);
    out(`error coalescing: -${n}\n`);
    return n;
  }
}
