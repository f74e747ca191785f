// vhd-util check: validate a VHD (and its ancestors with -p).
import { existsSync } from 'node:fs';
import { checkOne, type CheckOptions } from '../../../sdk/vhd/check.js';
import { dumpFooter, dumpHeader, dumpVhd } from '../../../sdk/vhd/dump.js';
import { ENOENT, errnoOf } from '../../../sdk/vhd/errors.js';
import { decodeFooter, decodeHeader, headerProblem } from '../../../sdk/vhd/format.js';
import { canonical, resolveParent } from '../../../sdk/vhd/locators.js';
import { parentIsRaw } from '../../../sdk/vhd/chain.js';
import { VhdFile, readFully } from '../../../sdk/vhd/vhd-file.js';
import { closeSync, openSync } from 'node:fs';
import { EINVAL, has, last, out, parseArgs } from '../common.js';

const USAGE =
  'options: -n <file> [-i ignore missing primary footers] [-I ignore parent uuids] [-t ignore timestamps] [-B do not check BAT for overlapping (precludes -s, -b)] [-p check parents] [-b check bitmaps] [-s stats] [-h help]\n';

/** After a failure: blktap dumps what it can read of the image. */
function dumpInvalid(name: string): string {
  let s = `${name} appears invalid; dumping metadata\n`;
  try {
    const v = VhdFile.open(name, { allowBackupFallback: true });
    try {
      s += dumpVhd(v);
    } finally {
      v.close();
    }
    return s;
  } catch (e) {
    s += `Failed to open ${name}: -${errnoOf(e)}\n\n${name} appears invalid; dumping headers\n`;
  }
  try {
    const fd = openSync(name, 'r');
    const buf = Buffer.alloc(1536);
    readFully(fd, buf, 0);
    closeSync(fd);
    s += dumpFooter(decodeFooter(buf.subarray(0, 512)));
    if (!headerProblem(buf.subarray(512))) s += dumpHeader(decodeHeader(buf.subarray(512)));
  } catch {
    /* nothing more to show */
  }
  return s;
}

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'check', optstring: 'n:iItBpbsh', usage: USAGE, helpExit: 0 }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  const opts: CheckOptions = {
    ignoreMissingPrimary: has(p, 'i'),
    ignoreParentUuid: has(p, 'I'),
    ignoreTimestamps: has(p, 't'),
    skipBatOverlap: has(p, 'B'),
    parents: has(p, 'p'),
    bitmaps: has(p, 'b'),
    stats: has(p, 's'),
  };
  if (!existsSync(name)) {
    out(`error opening ${name}: -${ENOENT}\n`);
    return ENOENT;
  }
  let current = name;
  let shown = name;
  const seen = new Set<string>([canonical(name)]);
  try {
    for (;;) {
      const r = checkOne(current, opts);
      if (r.vhd === 'fixed') return 0;
      out(r.stats !== undefined ? `${r.stats}\n` : `${shown} is valid\n`);
      if (!opts.parents) return 0;
      const v = VhdFile.open(current, { allowBackupFallback: true });
      let next: string | null = null;
      let raw = false;
      try {
        if (v.isDiff) {
          next = resolveParent(v);
          raw = parentIsRaw(v);
        }
      } finally {
        v.close();
      }
      // raw parents are not VHDs: nothing more to check
      if (next === null || raw) return 0;
      if (seen.has(next)) {
        out(`parent loop: ${next} is its own ancestor\n`);
        return EINVAL;
      }
      seen.add(next);
      current = next;
      shown = next;
    }
  } catch (e) {
    out(`${(e as Error).message}\n`);
    out(dumpInvalid(current));
    return EINVAL;
  }
}

