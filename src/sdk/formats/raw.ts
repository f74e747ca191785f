// raw images: a sparse file of exactly the virtual size; no header, no backing
// files. A raw image can still be the base of a qcow2/VHD child (`-F raw`/`-m`),
// so it can be hidden: that flag lives in a sidecar file `<path>.hidden`,
// because a raw image has nowhere else to keep it.
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SRError } from '../errors/sr-error.js';
import { refuseShrink, removeQuietly } from './common.js';
import { writeFileAtomic } from './atomic.js';
import { roundVirtualSize } from './rules.js';
import { storageSize } from './size.js';
import type { ImageFormatOps, ImageInfo, ScanRecord } from './types.js';

export function hiddenSidecar(path: string): string {
  return `${resolve(path)}.hidden`;
}

function rawInfo(path: string): ImageInfo {
  const abs = resolve(path);
  const st = statSync(abs);
  const size = storageSize(abs, st);
  return {
    path: abs,
    format: 'raw',
    virtualSize: size,
    // Allocated bytes: a sparse raw file uses only what was written; a device all of it.
    physicalSize: st.isFile() ? Math.min(size, st.blocks * 512) : size,
    parent: null,
    parentFormat: null,
    hidden: existsSync(hiddenSidecar(abs)),
  };
}

function noChains(what: string): SRError {
  return new SRError('Unimplemented', `raw images have no backing files, so they cannot ${what}; snapshot a raw image into a qcow2 or VHD child instead`);
}

export const rawOps: ImageFormatOps = {
  format: 'raw',

  async create(path, virtualSize) {
    const size = roundVirtualSize('raw', virtualSize);
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new SRError('VDIExists', `cannot create raw image ${path}: the file already exists`);
      throw new SRError('VDICreate', `creating raw image ${path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      ftruncateSync(fd, size);
    } catch (e) {
      closeSync(fd);
      removeQuietly(path);
      throw new SRError('VDICreate', `sizing raw image ${path} to ${size} bytes: ${(e as Error).message}`, { cause: e });
    }
    closeSync(fd);
    return size;
  },

  async info(path) {
    return rawInfo(path);
  },

  async scan(dir) {
    const abs = resolve(dir);
    const out: ScanRecord[] = [];
    for (const name of readdirSync(abs).filter((n) => n.endsWith('.raw')).sort()) {
      const path = join(abs, name);
      try {
        out.push({ kind: 'image', info: rawInfo(path) });
      } catch (e) {
        out.push({ kind: 'error', path, format: 'raw', message: (e as Error).message });
      }
    }
    return out;
  },

  async snapshot() {
    throw noChains('be a snapshot child');
  },

  async resize(path, newSize) {
    const st = statSync(path);
    if (!st.isFile()) {
      throw new SRError('VDIResize', `${path} is a block device: its SR resizes it (e.g. lvextend), not the raw format module`);
    }
    const current = st.size;
    refuseShrink(path, current, newSize);
    const size = roundVirtualSize('raw', newSize);
    if (size <= current) return current;
    try {
      truncateSync(path, size);
    } catch (e) {
      throw new SRError('VDIResize', `resizing ${path} to ${size} bytes: ${(e as Error).message}`, { cause: e });
    }
    return size;
  },

  async coalesce() {
    throw noChains('be coalesced');
  },

  async setParent() {
    throw noChains('be re-parented');
  },

  async getHidden(path) {
    return existsSync(hiddenSidecar(path));
  },

  async setHidden(path, hidden) {
    if (hidden) writeFileAtomic(hiddenSidecar(path), '1\n');
    else rmSync(hiddenSidecar(path), { force: true });
  },

  async chain(path) {
    return [{ path: resolve(path), format: 'raw' }];
  },
};
