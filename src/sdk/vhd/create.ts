// Creating images: dynamic, fixed (`create -r`) and differencing (`snapshot`).
// New files are written under a temporary name in the same directory, fsynced and
// renamed over the target, so a failure never leaves a half-written VHD behind
// (and an existing target is replaced atomically, as blktap's truncate-open does).
import { closeSync, fsyncSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EINVAL, ENOSPC, VhdError } from './errors.js';
import {
  BLOCK_SIZE,
  DISK_DIFF,
  DISK_DYNAMIC,
  DISK_FIXED,
  LOCATOR_SPACE,
  SECTOR,
  TABLE_OFFSET,
  VHD_EPOCH_OFFSET,
  encodeBatmapHeader,
  encodeFooter,
  encodeHeader,
  encodeParentName,
  metadataLayout,
  newBatmapHeader,
  newFooter,
  newHeader,
  type KeyHash,
} from './format.js';
import { Chain, RawImage, parentIsRaw } from './chain.js';
import { canonical, locatorPayloads, resolveParent } from './locators.js';
import { VhdFile, writeFully, sizeOfFd } from './vhd-file.js';

const MiB = 1024 * 1024;

/** Write `produce(fd)` to a temp file next to `path`, fsync it, rename it over `path`. */
export function writeAtomically(path: string, produce: (fd: number) => void): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'wx', 0o644);
  let ok = false;
  try {
    produce(fd);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

function isBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}

/**
 * Write a new sparse image (metadata followed by its footer). On a block device
 * (an LV, a loop device) blktap writes in place with the primary footer at the
 * end of the device; files go through writeAtomically.
 */
function writeImage(path: string, img: Buffer): void {
  if (!isBlockDevice(path)) {
    writeAtomically(path, (fd) => writeFully(fd, img, 0));
    return;
  }
  const fd = openSync(path, 'r+');
  try {
    const { size } = sizeOfFd(fd, path);
    if (size < img.length) throw new VhdError(ENOSPC, `${path}: device of ${size} bytes is too small for the metadata`);
    writeFully(fd, img.subarray(0, img.length - SECTOR), 0);
    writeFully(fd, img.subarray(img.length - SECTOR), size - SECTOR);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface ParentInfo {
  uuid: Buffer;
  timestamp: number;
  name: string;
  locators: { code: number; data: Buffer }[];
  keyhash: KeyHash | null;
}

/** Whole metadata of a new dynamic/differencing disk in one buffer (4.3 MB for 2 TiB). */
function buildSparseImage(type: number, size: bigint, maxBat: number, parent: ParentInfo | null): Buffer {
  const lay = metadataLayout(maxBat, parent !== null);
  // one pass over each byte: 0xff for the BAT entries, zero everywhere else
  const buf = Buffer.allocUnsafe(lay.end + SECTOR);
  buf.fill(0, 0, TABLE_OFFSET);
  buf.fill(0xff, TABLE_OFFSET, TABLE_OFFSET + maxBat * 4);
  buf.fill(0, TABLE_OFFSET + maxBat * 4);
  const footer = newFooter(type, size);
  const header = newHeader(maxBat);
  const bh = newBatmapHeader(BigInt(lay.batmapOffset), lay.batmapSectors);
  if (parent) {
    header.prtUuid = parent.uuid;
    header.prtTimestamp = parent.timestamp;
    header.prtName = encodeParentName(parent.name);
    parent.locators.forEach((l, i) => {
      const off = lay.locatorsOffset + i * LOCATOR_SPACE;
      header.locators[i] = { code: l.code, dataSpace: LOCATOR_SPACE, dataLen: l.data.length, reserved: 0, dataOffset: BigInt(off) };
      l.data.copy(buf, off);
    });
    if (parent.keyhash && parent.keyhash.cookie) bh.keyhash = parent.keyhash;
  }
  encodeBatmapHeader(bh).copy(buf, lay.batmapHeaderOffset);
  const f = encodeFooter(footer);
  f.copy(buf, 0);
  encodeHeader(header).copy(buf, 512);
  f.copy(buf, lay.end);
  return buf;
}

/** Size as `create -s` takes it: MiB, rounded up to a multiple of 2 MiB (blktap quirk). */
export function roundedSizeBytes(mib: number): bigint {
  const bytes = BigInt(mib) * BigInt(MiB);
  const b = BigInt(BLOCK_SIZE);
  return ((bytes + b - 1n) / b) * b;
}

export interface CreateOptions {
  /** `-r`: fixed disk, fully written with zeros. */
  fixed?: boolean;
  /** `-S`: preallocate BAT/batmap for this many MiB. */
  metadataMiB?: number;
}

export function createVhd(path: string, sizeMiB: number, opts: CreateOptions = {}): void {
  const size = roundedSizeBytes(sizeMiB);
  if (opts.metadataMiB !== undefined && opts.metadataMiB < sizeMiB) {
    throw new VhdError(EINVAL, 'Error: <-S size> must be greater than <-s size>');
  }
  if (opts.fixed) {
    writeAtomically(path, (fd) => {
      const chunk = Buffer.alloc(Math.min(Number(size), 4 * MiB));
      for (let pos = 0; pos < Number(size); pos += chunk.length) {
        writeFully(fd, chunk.subarray(0, Math.min(chunk.length, Number(size) - pos)), pos);
      }
      writeFully(fd, encodeFooter(newFooter(DISK_FIXED, size)), Number(size));
    });
    return;
  }
  const maxBytes = opts.metadataMiB !== undefined ? roundedSizeBytes(opts.metadataMiB) : size;
  const maxBat = Number(maxBytes / BigInt(BLOCK_SIZE));
  writeImage(path, buildSparseImage(DISK_DYNAMIC, size, maxBat, null));
}

export interface SnapshotOptions {
  /** `-m`: the parent is a raw file. */
  rawParent?: boolean;
  /** `-S`: preallocate metadata for this many MiB. */
  metadataMiB?: number;
  /** `-e`: link to the given parent even if it is an empty differencing disk. */
  linkEmpty?: boolean;
  /** `-l`: maximum chain depth of the new child. */
  depthLimit?: number;
}

function mtimeVhd(path: string): number {
  return Math.max(0, Math.floor(statSync(path).mtimeMs / 1000) - VHD_EPOCH_OFFSET);
}

/**
 * Quirk matched from blktap: unless `-e`, an empty differencing parent is skipped
 * and the child links to the first ancestor that holds data, is not differencing,
 * or is raw; the child keeps the *given* parent's size.
 */
function skipEmptyParents(parentPath: string): { path: string; raw: boolean } {
  let path = canonical(parentPath);
  const seen = new Set<string>([path]);
  for (;;) {
    const v = VhdFile.open(path, { allowBackupFallback: true });
    try {
      if (!v.isDiff || v.allocatedCount() !== 0) return { path, raw: false };
      const next = resolveParent(v);
      if (seen.has(next)) throw new VhdError(40, `parent loop at ${next}`);
      seen.add(next);
      if (parentIsRaw(v)) return { path: next, raw: true };
      path = next;
    } finally {
      v.close();
    }
  }
}

export function snapshotVhd(childPath: string, parentPath: string, opts: SnapshotOptions = {}): void {
  let size: bigint;
  let linkPath: string;
  let raw = !!opts.rawParent;
  let uuid: Buffer = Buffer.alloc(16);
  let keyhash: KeyHash | null = null;
  if (raw) {
    const r = RawImage.open(parentPath);
    try {
      size = BigInt(r.size);
    } finally {
      r.close();
    }
    linkPath = canonical(parentPath);
  } else {
    const given = VhdFile.open(parentPath, { allowBackupFallback: true });
    try {
      size = given.footer.currSize;
    } finally {
      given.close();
    }
    const target = opts.linkEmpty ? { path: canonical(parentPath), raw: false } : skipEmptyParents(parentPath);
    linkPath = target.path;
    raw = target.raw;
    if (!raw) {
      if (opts.depthLimit !== undefined) {
        const c = Chain.open(linkPath, { allowBackupFallback: true });
        const depth = c.images.length;
        c.close();
        if (depth + 1 > opts.depthLimit) {
          throw new VhdError(ENOSPC, `snapshot depth exceeded: current depth: ${depth}, limit: ${opts.depthLimit}`);
        }
      }
      const p = VhdFile.open(linkPath, { allowBackupFallback: true });
      try {
        uuid = p.footer.uuid;
        const bh = p.hasBatmap ? p.loadBatmap() : null;
        if (bh && bh.keyhash.cookie) keyhash = bh.keyhash;
      } finally {
        p.close();
      }
    }
  }
  const maxBytes = opts.metadataMiB !== undefined ? BigInt(opts.metadataMiB) * BigInt(MiB) : size;
  if (maxBytes < size) throw new VhdError(EINVAL, `metadata preallocation size (${opts.metadataMiB} MB) is smaller than the parent size`);
  const maxBat = Number((maxBytes + BigInt(BLOCK_SIZE) - 1n) / BigInt(BLOCK_SIZE));
  const parent: ParentInfo = {
    uuid,
    timestamp: mtimeVhd(linkPath),
    name: basename(linkPath),
    locators: locatorPayloads(childPath, linkPath),
    keyhash,
  };
  writeImage(childPath, buildSparseImage(DISK_DIFF, size, maxBat, parent));
}

