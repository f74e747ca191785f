// vhd-util scan over files: one `vhd=... capacity=... size=... hidden=... parent=...`
// line per image. Fast mode reads only the footer copy and header at offset 0.
import { closeSync, openSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { errnoOf } from './errors.js';
import { DISK_DIFF, DISK_FIXED, SECTOR, decodeBatmapHeader, decodeParentName, isZero, roundUp } from './format.js';
import { rawParentLocator, resolveParent } from './locators.js';
import { VhdFile, readFully, sizeOfFd } from './vhd-file.js';
import { parentIsRaw } from './chain.js';

export interface ScanOptions {
  fast?: boolean;
  verbose?: boolean;
  markers?: boolean;
  parents?: boolean;
  pretty?: boolean;
}

export interface ScanResult {
  path: string;
  ok: boolean;
  capacity?: number;
  size?: number;
  hidden?: number;
  marker?: number;
  keyhash?: string;
  /** Parent as found (header name in fast mode, resolved path otherwise), or null. */
  parent?: string | null;
  parentRaw?: boolean;
  /** A raw (non-VHD) parent reached through -a. */
  raw?: boolean;
  errno?: number;
  message?: string;
  /** Added by -a (its errors do not change the exit status). */
  fromParent?: boolean;
}

export const fail = (path: string, errno: number, message: string): ScanResult => ({ path, ok: false, errno, message });

/** One buffer for every fast-mode read: scanning 1000 files must not churn the GC. */
const fastBuf = Buffer.alloc(1536);

/** Checksum test without decoding: one's complement of the byte sum, field at `at` excluded. */
function checksumOk(b: Buffer, start: number, len: number, at: number): boolean {
  let sum = 0;
  for (let i = start; i < start + len; i++) sum += b[i]!;
  for (let i = at; i < at + 4; i++) sum -= b[i]!;
  return (~sum >>> 0) === b.readUInt32BE(at);
}

/**
 * Fast mode: only the footer copy and header at offset 0 (plus the batmap header
 * for -M); fields are read in place rather than decoded into objects.
 */
function scanFast(path: string, opts: ScanOptions): ScanResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return fail(path, errnoOf(e), 'opening file');
  }
  try {
    const size = sizeOfFd(fd, path).size;
    return scanHeaders(path, size, opts, (buf, off) => readFully(fd, buf, off));
  } finally {
    closeSync(fd);
  }
}

/**
 * Parse the footer copy and header at offset 0 of an image (any byte source:
 * a file, or an LV's extents on its PV), plus the batmap header for -M.
 */
export function scanHeaders(path: string, size: number, opts: ScanOptions, read: (buf: Buffer, off: number) => void): ScanResult {
  const buf = fastBuf;
  buf.fill(0);
  read(buf, 0);
  if (buf.toString('latin1', 0, 8) !== 'conectix' || !checksumOk(buf, 0, 512, 64)) return fail(path, 22, 'opening file');
  const type = buf.readUInt32BE(60);
  if (type === DISK_FIXED || buf.readBigUInt64BE(16) !== 512n) return fail(path, 22, 'opening file');
  if (buf.toString('latin1', 512, 520) !== 'cxsparse' || !checksumOk(buf, 512, 1024, 512 + 36)) {
    return fail(path, 22, 'opening file');
  }
  const r: ScanResult = { path, ok: true, capacity: Number(buf.readBigUInt64BE(48)), size, hidden: buf[85]! };
  const diff = type === DISK_DIFF;
  r.parent = diff ? decodeParentName(buf.subarray(512 + 64, 512 + 576)) : null;
  r.parentRaw = diff && isZero(buf.subarray(512 + 40, 512 + 56));
  if (opts.markers) {
    r.marker = 0;
    r.keyhash = '';
    const tap = buf.toString('latin1', 28, 32) === 'tap\0' && buf.readUInt32BE(32) >= 0x00010002;
    if (tap) {
      const tableOffset = Number(buf.readBigUInt64BE(512 + 16));
      const maxBat = buf.readUInt32BE(512 + 28);
      const bb = Buffer.alloc(SECTOR);
      try {
        read(bb, tableOffset + roundUp(maxBat * 4, SECTOR));
      } catch {
        return fail(path, 22, 'checking markers');
      }
      const bh = decodeBatmapHeader(bb);
      if (bh.cookie !== 'tdbatmap') return fail(path, 22, 'checking markers');
      r.marker = bh.marker;
      r.keyhash = bh.keyhash.cookie ? bh.keyhash.hash.toString('hex') : '';
    }
  }
  return r;
}

function scanFull(path: string, opts: ScanOptions): ScanResult {
  let v: VhdFile;
  try {
    v = VhdFile.open(path);
  } catch (e) {
    return fail(path, errnoOf(e), 'opening file');
  }
  try {
    const r: ScanResult = { path, ok: true, capacity: v.currSize, size: v.fileSize, hidden: v.footer.hidden, parent: null };
    if (v.isDiff) {
      r.parentRaw = parentIsRaw(v);
      try {
        r.parent = resolveParent(v);
      } catch {
        r.parent = rawParentLocator(v);
        if (r.parent === null) return fail(path, 22, 'getting parent');
      }
    }
    if (opts.markers) {
      try {
        const bh = v.hasBatmap ? v.loadBatmap() : null;
        r.marker = bh?.marker ?? 0;
        r.keyhash = bh && bh.keyhash.cookie ? bh.keyhash.hash.toString('hex') : '';
      } catch {
        return fail(path, 22, 'checking markers');
      }
    }
    return r;
  } finally {
    v.close();
  }
}

function scanRaw(path: string): ScanResult {
  try {
    const fd = openSync(path, 'r');
    const size = sizeOfFd(fd, path).size;
    closeSync(fd);
    return { path, ok: true, capacity: size, size, hidden: 1, parent: null, raw: true };
  } catch (e) {
    return fail(path, errnoOf(e), 'failure scanning target');
  }
}

/** Scan targets in order; with `parents`, append each image's parent (deduplicated by basename). */
export function scanTargets(targets: string[], opts: ScanOptions, stopOnError: boolean): ScanResult[] {
  const results: ScanResult[] = [];
  const seen = new Set<string>();
  const work: { path: string; raw: boolean; fromParent: boolean }[] = targets.map((path) => ({ path, raw: false, fromParent: false }));
  for (const t of work) seen.add(basename(t.path));
  for (let i = 0; i < work.length; i++) {
    const t = work[i]!;
    let r = t.raw ? scanRaw(t.path) : opts.fast ? scanFast(t.path, opts) : scanFull(t.path, opts);
    if (t.fromParent) r = r.ok ? { ...r, fromParent: true } : { ...r, fromParent: true, message: 'failure scanning target' };
    results.push(r);
    if (!r.ok && stopOnError && !t.fromParent) break;
    if (opts.parents && r.ok && r.parent) {
      const key = basename(r.parent);
      if (!seen.has(key)) {
        seen.add(key);
        work.push({ path: r.parent, raw: !!r.parentRaw, fromParent: true });
      }
    }
  }
  return results;
}

export function formatScanLine(r: ScanResult, opts: ScanOptions): string {
  const name = opts.verbose ? r.path : basename(r.path);
  if (!r.ok) return `vhd=${r.path} scan-error=-${r.errno} error-message='${r.message}'`;
  const parent = r.parent ? (opts.verbose ? r.parent : basename(r.parent)) : 'none';
  const markers = opts.markers ? ` marker=${r.marker ?? 0} keyhash=${r.keyhash ?? ''}` : '';
  return `vhd=${name} capacity=${r.capacity} size=${r.size} hidden=${r.hidden}${markers} parent=${parent}`;
}

/**
 * Pretty tree (-p): sorted by canonical path; roots in three passes (hidden roots,
 * other roots, anything left); children indented 3 spaces per level, non-hidden
 * before hidden; an image whose parent was not scanned gets " (not found in scan)".
 */
export function formatPretty(results: ScanResult[], opts: ScanOptions): string[] {
  const canon = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const items = results.map((r) => ({ r, key: canon(r.path) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const byKey = new Map(items.map((i) => [i.key, i]));
  const children = new Map<string, typeof items>();
  for (const i of items) {
    if (i.r.ok && i.r.parent) {
      const pk = canon(i.r.parent);
      if (byKey.has(pk)) {
        const list = children.get(pk) ?? [];
        list.push(i);
        children.set(pk, list);
      }
    }
  }
  const lines: string[] = [];
  const printed = new Set<string>();
  const emit = (i: (typeof items)[number], depth: number) => {
    if (printed.has(i.key)) return;
    printed.add(i.key);
    let line = ' '.repeat(3 * depth) + formatScanLine(i.r, opts);
    if (i.r.ok && i.r.parent && !byKey.has(canon(i.r.parent))) line += ' (not found in scan)';
    lines.push(line);
    const kids = children.get(i.key) ?? [];
    for (const k of kids.filter((k) => !k.r.hidden)) emit(k, depth + 1);
    for (const k of kids.filter((k) => k.r.hidden)) emit(k, depth + 1);
  };
  const isRoot = (i: (typeof items)[number]) => !i.r.ok || !i.r.parent || !byKey.has(canon(i.r.parent));
  for (const i of items) if (isRoot(i) && i.r.hidden) emit(i, 0);
  for (const i of items) if (isRoot(i)) emit(i, 0);
  for (const i of items) emit(i, 0);
  return lines;
}
