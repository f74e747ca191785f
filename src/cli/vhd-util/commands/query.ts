// vhd-util query: one line per requested item, in blktap's fixed order v,s,p,f,m,d,a,S.
import { chainDepth } from '../../../sdk/vhd/chain.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { BLOCK_SIZE } from '../../../sdk/vhd/format.js';
import { rawParentLocator, resolveParent } from '../../../sdk/vhd/locators.js';
import { VhdFile } from '../../../sdk/vhd/vhd-file.js';
import { EINVAL, has, last, out, parseArgs } from '../common.js';

const USAGE =
  "options: <-n name> [-v print virtual size (in MB)] [-s print physical utilization (bytes)] [-p print parent] [-f print fields] [-m print marker] [-d print chain depth] [-S print max virtual size (MB) for fast resize] [-a print allocated block count] [-u don't resolve parent path] [-h help]\n";

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'query', optstring: 'n:vspfmdSauh', usage: USAGE, helpExit: 0 }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  let vhd: VhdFile;
  try {
    vhd = VhdFile.open(name, { allowBackupFallback: true });
  } catch (e) {
    const n = errnoOf(e);
    out(`error opening ${name}: -${n}\n`);
    return n;
  }
  let status = 0;
  const lines: string[] = [];
  const flush = () => {
    if (lines.length) out(lines.join(''));
    lines.length = 0;
  };
  try {
    if (has(p, 'v')) lines.push(`${Math.floor(vhd.currSize / 1048576)}\n`);
    if (has(p, 's')) lines.push(`${vhd.physicalSize()}\n`);
    if (has(p, 'p')) {
      if (!vhd.isDiff) lines.push(`${name} has no parent\n`);
      else if (has(p, 'u')) lines.push(`${rawParentLocator(vhd) ?? ''}\n`);
      else {
        try {
          lines.push(`${resolveParent(vhd)}\n`);
        } catch (e) {
          lines.push('query failed\n');
          status = errnoOf(e);
        }
      }
    }
    if (has(p, 'f')) lines.push(`hidden: ${vhd.footer.hidden}\n`);
    if (has(p, 'm')) lines.push(`marker: ${vhd.hasBatmap ? (vhd.loadBatmap()?.marker ?? 0) : 0}\n`);
    if (has(p, 'd')) {
      try {
        lines.push(`chain depth: ${chainDepth(name)}\n`);
      } catch (e) {
        const n = errnoOf(e);
        lines.push(`error checking chain depth: -${n}\n`);
        status = n;
      }
    }
    if (has(p, 'a')) lines.push(`${vhd.isFixed ? 0 : vhd.allocatedCount()}\n`);
    if (has(p, 'S')) {
      lines.push(`${vhd.isFixed ? Math.floor(vhd.currSize / 1048576) : (vhd.maxBat * BLOCK_SIZE) / 1048576}\n`);
    }
    flush();
  } catch (e) {
    flush();
    const n = errnoOf(e);
    out(`query failed: ${(e as Error).message}: -${n}\n`);
    status = n;
  } finally {
    vhd.close();
  }
  return status;
}
