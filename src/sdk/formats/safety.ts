// checkSafe: an image whose metadata points outside its SR is refused before any
// tool opens it (qemu would follow a backing file or data-file anywhere: a
// guest-writable image could then read or overwrite other disks or host files).
import { realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { SRError } from '../errors/sr-error.js';
import { ChainError, refsOf } from './chain.js';
import { Qcow2HeaderError } from './qcow2-header.js';
import type { ImageRef } from './types.js';
import { VhdHeaderError } from './vhd-header.js';

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

function unsafe(image: string, why: string): SRError {
  return new SRError('VDIUnavailable', `image ${image} is refused: ${why}`);
}

/**
 * Refuse `image` unless it, every ancestor, every path its metadata names (all
 * VHD parent locators, qcow2 backing files) and their real paths (symlinks
 * followed) stay inside `srDir`, and no qcow2 in the chain has a data-file.
 */
export function checkSafe(image: ImageRef, srDir: string): void {
  const root = realpathSync(srDir);
  const lexicalRoot = resolve(srDir);
  const seen = new Set<string>();
  let cur: ImageRef | null = { path: resolve(image.path), format: image.format };
  let depth = 0;
  while (cur !== null) {
    const where: string = cur.path === resolve(image.path) ? '' : ` (in its backing chain: ${cur.path})`;
    if (!inside(lexicalRoot, cur.path) && !inside(root, cur.path)) throw unsafe(image.path, `${cur.path} is outside the SR directory ${srDir}`);
    let real: string;
    try {
      real = realpathSync(cur.path);
    } catch {
      throw unsafe(image.path, `${cur.path}${where} does not exist`);
    }
    if (!inside(root, real)) throw unsafe(image.path, `${cur.path}${where} resolves to ${real}, outside the SR directory ${srDir}`);
    if (seen.has(real)) throw unsafe(image.path, `its backing chain loops back to ${real}`);
    seen.add(real);
    if (++depth > 256) throw unsafe(image.path, 'its backing chain is longer than 256');
    let refs;
    try {
      refs = refsOf(cur);
    } catch (e) {
      if (e instanceof ChainError || e instanceof Qcow2HeaderError || e instanceof VhdHeaderError) throw unsafe(image.path, e.message);
      throw e;
    }
    for (const m of refs.mentions) {
      if (m.what === 'data-file') throw unsafe(image.path, `${cur.path}${where} has an external data file (${m.stored}); data files are not allowed`);
      if (m.resolved === null) throw unsafe(image.path, `${cur.path}${where} names ${m.what} '${m.stored}', which is not a file path`);
      if (!inside(lexicalRoot, m.resolved) && !inside(root, m.resolved)) {
        throw unsafe(image.path, `${cur.path}${where} names ${m.what} '${m.stored}' (${m.resolved}), outside the SR directory ${srDir}`);
      }
    }
    cur = refs.parent;
  }
}
