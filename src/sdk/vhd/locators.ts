// Parent locators as blktap writes them: three entries (MacX, W2ku, W2ru), each
// holding the parent path *relative to the child's directory*, data_space 512.
import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ENOENT, EINVAL, VhdError } from './errors.js';
import { LOCATOR_SPACE, PLAT_CODE_MACX, PLAT_CODE_W2KU, PLAT_CODE_W2RU, type Locator } from './format.js';
import type { VhdFile } from './vhd-file.js';

/** Canonical absolute path of an existing file, or of a not-yet-existing one in an existing dir. */
export function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return join(realpathSync(dirname(resolve(path))), basename(path));
  }
}

/** Relative path from the child's directory to the parent, `./`-prefixed when it does not climb. */
export function relativeParentPath(childPath: string, parentPath: string): string {
  const rel = relative(dirname(canonical(childPath)), canonical(parentPath));
  return rel.startsWith('../') ? rel : `./${rel}`;
}

/** Payloads of the three locators for a parent, in slot order. */
export function locatorPayloads(childPath: string, parentPath: string): { code: number; data: Buffer }[] {
  const rel = relativeParentPath(childPath, parentPath);
  const win = `.\\${relative(dirname(canonical(childPath)), canonical(parentPath)).replace(/\//g, '\\')}`;
  const w = Buffer.from(win, 'utf16le');
  return [
    { code: PLAT_CODE_MACX, data: Buffer.from(`file://${rel}`, 'utf8') },
    { code: PLAT_CODE_W2KU, data: w },
    { code: PLAT_CODE_W2RU, data: Buffer.from(w) },
  ];
}

export function locatorCodeName(code: number): string {
  switch (code) {
    case PLAT_CODE_MACX:
      return 'PLAT_CODE_MACX';
    case PLAT_CODE_W2KU:
      return 'PLAT_CODE_W2KU';
    case PLAT_CODE_W2RU:
      return 'PLAT_CODE_W2RU';
    case 0x4d616320:
      return 'PLAT_CODE_MAC';
    case 0x5769326b:
      return 'PLAT_CODE_WI2K';
    case 0x57693272:
      return 'PLAT_CODE_WI2R';
    default:
      return 'PLAT_CODE_NONE';
  }
}

/** Decode one locator's payload into a path (MacX strips file://, W2* use / and drop C:). */
export function decodeLocator(vhd: VhdFile, loc: Locator): string | null {
  if (loc.code !== PLAT_CODE_MACX && loc.code !== PLAT_CODE_W2KU && loc.code !== PLAT_CODE_W2RU) return null;
  const space = loc.dataSpace < 512 ? loc.dataSpace * 512 : loc.dataSpace;
  if (loc.dataLen === 0 || loc.dataLen > Math.max(space, LOCATOR_SPACE)) return null;
  const buf = Buffer.alloc(loc.dataLen);
  vhd.readAt(buf, Number(loc.dataOffset));
  if (loc.code === PLAT_CODE_MACX) {
    const s = buf.toString('utf8').replace(/\0+$/, '');
    return s.startsWith('file://') ? s.slice(7) : s;
  }
  let s = buf.toString('utf16le').replace(/\0+$/, '').replace(/\\/g, '/');
  if (/^[A-Za-z]:/.test(s)) s = s.slice(2);
  return s;
}

/** The first decodable locator string, unresolved (query -p -u). */
export function rawParentLocator(vhd: VhdFile): string | null {
  for (const loc of vhd.header?.locators ?? []) {
    const s = decodeLocator(vhd, loc);
    if (s !== null) return s;
  }
  return null;
}

/**
 * Canonical absolute parent path, trying locators in slot order; ENOENT when none resolves.
 *
 * Blktap joins a relative locator to the child's canonical directory. One more
 * candidate is tried after those: the directory the child was opened through,
 * when that is a symlink farm such as /dev/<vg>/ (LVs are links to /dev/dm-N,
 * or to loop devices here, so their canonical directory is /dev, where the
 * parent's LV name does not exist). A parent found that way is returned by the
 * path it was found at, so its own parent is looked up in the same directory.
 */
export function resolveParent(vhd: VhdFile): string {
  if (!vhd.isDiff) throw new VhdError(EINVAL, `${vhd.path} has no parent`);
  const childDir = dirname(canonical(vhd.path));
  const openedDir = dirname(resolve(vhd.path));
  let any = false;
  const readable = (c: string): boolean => {
    try {
      accessSync(c, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  };
  const decoded: string[] = [];
  for (const loc of vhd.header?.locators ?? []) {
    const s = decodeLocator(vhd, loc);
    if (s === null) continue;
    any = true;
    decoded.push(s);
    const candidates = isAbsolute(s) ? [s, join(childDir, s)] : [join(childDir, s)];
    for (const c of candidates) if (readable(c)) return realpathSync(c);
  }
  if (openedDir !== childDir) {
    for (const s of decoded) {
      if (isAbsolute(s)) continue;
      const c = join(openedDir, s);
      if (readable(c)) return c;
    }
  }
  if (!any) throw new VhdError(EINVAL, `${vhd.path}: no decodable parent locator`);
  throw new VhdError(ENOENT, `${vhd.path}: parent not found`);
}
