// The VHD headers of a directory read in this process: the very reads of
// `vhd-util scan -f -c -m <dir>/*.vhd` (src/sdk/vhd/scan.ts is the code our
// vhd-util runs), without the second process. A scan of a large SR spends more
// on starting that process than on the reads (issue 5: "one `vhd-util scan`,
// or in-process header reads"). test/file-sr/vhd-headers.test.ts holds it to
// agreeing with the configured vhd-util on every field.
import { readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ImageInfo, ScanRecord } from './types.js';
import { errnoOf } from '../vhd/errors.js';
import { scanTargets, type ScanResult } from '../vhd/scan.js';

/** `*.vhd` as glob(3) matches it: no leading dot. Sorted, as the inventory is. */
function vhdNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.vhd') && !n.startsWith('.'))
    .sort();
}

function scanOne(path: string): ScanResult {
  try {
    return scanTargets([path], { fast: true }, false)[0]!;
  } catch (e) {
    // A read that fails after open (a directory named x.vhd: EISDIR) is that image's error, not the scan's.
    return { path, ok: false, errno: errnoOf(e), message: `reading headers: ${(e as Error).message}` };
  }
}

/** Every `*.vhd` directly in `dir`, as fast-mode `vhd-util scan` reports it; a corrupt image is an `error` record. */
export function scanVhdHeaders(dir: string): ScanRecord[] {
  const abs = resolve(dir);
  return vhdNames(abs).map((name): ScanRecord => {
    const path = join(abs, name);
    const r = scanOne(path);
    if (!r.ok) return { kind: 'error', path, format: 'vhd', message: `VHD header scan: ${r.message ?? 'unreadable'} (-${r.errno ?? 22})` };
    // Fast mode knows the header's parent name only; vhd-util prints its basename, resolved in the SR directory.
    const parent = r.parent ? join(abs, basename(r.parent)) : null;
    const info: ImageInfo = {
      path,
      format: 'vhd',
      virtualSize: r.capacity!,
      physicalSize: r.size!,
      parent,
      parentFormat: parent === null ? null : r.parentRaw ? 'raw' : 'vhd',
      hidden: r.hidden !== 0,
    };
    return { kind: 'image', info };
  });
}
