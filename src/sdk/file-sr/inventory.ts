// The SR's VDIs as the files say: one pass over the directory, every header
// read in this process (VHD with the reads of `vhd-util scan -f`, qcow2/raw
// through the formats layer; never one process per VDI, and no process at
// all), turned into a tree keyed by uuid. A corrupt image is listed in
// `errors` and left out; it never fails the scan.
import { basename, dirname, resolve } from 'node:path';
import type { ImageFormat } from '../../driver-info.js';
import { scanDirectory } from '../formats/index.js';
import { uuidOfFileName } from './paths.js';

export interface VdiNode {
  uuid: string;
  format: ImageFormat;
  path: string;
  virtualSize: number;
  physicalSize: number;
  /** Parent VDI uuid when the parent is an image of this SR. */
  parent: string | null;
  /** A backing file that is not a VDI of this SR (reported as an error, never followed). */
  foreignParent: string | null;
  hidden: boolean;
  children: string[];
  /** The image's own machine data when the header read held it (ImageInfo.ownImageMeta). */
  ownImageMeta?: string | null;
}

export interface Inventory {
  srDir: string;
  vdis: Map<string, VdiNode>;
  errors: { path: string; message: string }[];
}

type PassListener = (srDir: string) => void;
const passListeners = new Set<PassListener>();

/** Calls `fn` for every header pass over an SR directory (tests count them: one per scan); returns the unsubscribe. */
export function onHeaderPass(fn: PassListener): () => void {
  passListeners.add(fn);
  return () => passListeners.delete(fn);
}

export async function readInventory(srDir: string, formats: readonly ImageFormat[] = ['vhd', 'qcow2', 'raw']): Promise<Inventory> {
  const dir = resolve(srDir);
  const vdis = new Map<string, VdiNode>();
  const errors: Inventory['errors'] = [];
  for (const fn of passListeners) fn(dir);
  for (const r of await scanDirectory(dir, formats, { vhdHeaders: 'in-process' })) {
    if (r.kind === 'error') {
      errors.push({ path: r.path, message: r.message });
      continue;
    }
    const uuid = uuidOfFileName(basename(r.info.path));
    if (uuid === null) continue; // not named <uuid>.<ext>: not a VDI of this SR
    if (vdis.has(uuid)) {
      errors.push({ path: r.info.path, message: `VDI ${uuid} has more than one image file (${vdis.get(uuid)!.path}); keeping the first` });
      continue;
    }
    let parent: string | null = null;
    let foreignParent: string | null = null;
    if (r.info.parent !== null) {
      const p = resolve(r.info.parent);
      const pu = dirname(p) === dir ? uuidOfFileName(basename(p)) : null;
      if (pu === null) foreignParent = r.info.parent;
      else parent = pu;
    }
    if (foreignParent !== null) {
      // Never followed, never reported: attaching it would let a guest reach outside the SR.
      errors.push({ path: r.info.path, message: `backing file ${foreignParent} is not an image of this SR; image skipped` });
      continue;
    }
    vdis.set(uuid, {
      uuid,
      format: r.info.format,
      path: r.info.path,
      virtualSize: r.info.virtualSize,
      physicalSize: r.info.physicalSize,
      parent,
      foreignParent,
      hidden: r.info.hidden,
      children: [],
      ...(r.info.ownImageMeta !== undefined ? { ownImageMeta: r.info.ownImageMeta } : {}),
    });
  }
  for (const v of vdis.values()) {
    if (v.parent === null) continue;
    const p = vdis.get(v.parent);
    if (p === undefined) {
      errors.push({ path: v.path, message: `parent ${v.parent} is missing` });
      continue;
    }
    p.children.push(v.uuid);
  }
  for (const v of vdis.values()) v.children.sort();
  return { srDir: dir, vdis, errors };
}

/** Chain length from `uuid` to its root, counting both ends. */
export function depthOf(inv: Inventory, uuid: string): number {
  let n = 0;
  const seen = new Set<string>();
  for (let cur: string | null = uuid; cur !== null && !seen.has(cur); cur = inv.vdis.get(cur)?.parent ?? null) {
    seen.add(cur);
    n++;
  }
  return n;
}
