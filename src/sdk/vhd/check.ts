// `vhd-util check`: structural validation of one VHD (and with `parents` its chain),
// reporting the first problem in blktap's words.
import { closeSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import { ENOENT, EINVAL, VhdError, errnoOf } from './errors.js';
import {
  BAT_UNUSED,
  BLOCK_SECTORS_ON_DISK,
  CREATOR_TAP,
  CREATOR_VERSION_TAP,
  DISK_DIFF,
  DISK_DYNAMIC,
  DISK_FIXED,
  SECTOR,
  SECTORS_PER_BLOCK,
  byteChecksum,
  decodeFooter,
  decodeParentName,
  footerProblem,
  isZero,
  vhdNow,
  type Footer,
} from './format.js';
import { decodeLocator, resolveParent } from './locators.js';
import { Chain, RawImage, parentIsRaw } from './chain.js';
import { VhdFile, readFully, testBit, sizeOfFd } from './vhd-file.js';

export interface CheckOptions {
  ignoreMissingPrimary?: boolean; // -i
  ignoreParentUuid?: boolean; // -I
  ignoreTimestamps?: boolean; // -t
  skipBatOverlap?: boolean; // -B
  parents?: boolean; // -p
  bitmaps?: boolean; // -b
  stats?: boolean; // -s
}

export class CheckFailure extends VhdError {}

const bad = (msg: string): never => {
  throw new CheckFailure(EINVAL, msg);
};

function checkFooterFields(f: Footer, opts: CheckOptions, fileSize: number): void {
  if (f.cookie !== 'conectix') bad('invalid cookie');
  if (!(f.features & 2)) bad("invalid 'reserved' feature");
  if (f.features & ~3) bad('invalid extra features');
  if (f.version !== 0x00010000) bad('invalid file version');
  if (f.type === DISK_FIXED) {
    if (f.dataOffset !== 0xffffffffffffffffn) bad('invalid data offset');
  } else if (f.dataOffset < 512n || Number(f.dataOffset) + 1024 > fileSize) bad('invalid data offset');
  if (!opts.ignoreTimestamps && f.timestamp > vhdNow() + 30 * 60) bad('creation time in future');
  if (f.creatorApp === CREATOR_TAP && f.creatorVersion > CREATOR_VERSION_TAP) bad('unsupported tap creator version');
  const geo = BigInt(f.geometry.cyl) * BigInt(f.geometry.heads) * BigInt(f.geometry.spt) * 512n;
  if (geo > f.currSize) bad('geometry too large');
  if (f.type !== DISK_FIXED && f.type !== DISK_DYNAMIC && f.type !== DISK_DIFF) bad('invalid type');
  if (f.savedState > 1) bad("invalid 'saved state' field");
  if (f.hidden > 1) bad("invalid 'hidden' field");
  if (!isZero(f.reserved)) bad("invalid 'reserved' field");
  if (isZero(f.uuid)) bad('invalid uuid');
}

/** Check one image; returns stats text when asked. Throws CheckFailure/VhdError on a problem. */
export function checkOne(path: string, opts: CheckOptions): { vhd: 'fixed' | 'ok'; stats?: string } {
  const fd = openSync(path, 'r');
  let size: number;
  const primary = Buffer.alloc(SECTOR);
  try {
    size = sizeOfFd(fd, path).size;
    if (size < SECTOR) bad('primary footer invalid: invalid cookie');
    readFully(fd, primary, size - SECTOR);
  } finally {
    closeSync(fd);
  }
  const pp = footerProblem(primary);
  if (pp && !opts.ignoreMissingPrimary) bad(`primary footer invalid: ${pp}`);
  if (!pp) {
    try {
      checkFooterFields(decodeFooter(primary), opts, size);
    } catch (e) {
      if (e instanceof CheckFailure) bad(`primary footer invalid: ${e.message}`);
      throw e;
    }
  }
  const v = VhdFile.open(path, { allowBackupFallback: true });
  try {
    if (v.isFixed) {
      if (v.fileSize !== v.currSize + SECTOR) bad(`invalid fixed disk size: file ${v.fileSize}, expected ${v.currSize + SECTOR}`);
      return { vhd: 'fixed' };
    }
    const backup = Buffer.alloc(SECTOR);
    v.readAt(backup, 0);
    const bp = footerProblem(backup);
    if (bp) bad(`backup footer invalid: ${bp}`);
    if (!pp && !backup.equals(primary)) bad('primary and backup footers do not match');
    const h = v.header!;
    if (h.version !== 0x00010000) bad('header invalid: invalid version');
    if (h.dataOffset !== 0xffffffffffffffffn) bad('header invalid: invalid data offset');
    if (h.blockSize === 0 || (h.blockSize & (h.blockSize - 1)) !== 0) bad('header invalid: invalid block size');
    const tableOff = Number(h.tableOffset);
    if (tableOff < Number(v.footer.dataOffset) + 1024 || tableOff % SECTOR !== 0) bad('header invalid: invalid table offset');
    if (Math.ceil(v.currSize / h.blockSize) > h.maxBat) bad('header invalid: max BAT size too small for the disk size');
    if (v.isDiff) {
      if (decodeParentName(h.prtName) === '') bad('invalid parent name');
    } else if (!isZero(h.prtUuid) || !isZero(h.prtName) || h.locators.some((l) => l.code !== 0)) {
      bad('invalid parent fields for a non-differencing disk');
    }
    // BAT: entries inside the file, past the metadata, not overlapping each other
    let bat: Uint32Array;
    try {
      bat = v.bat();
    } catch (e) {
      bad(`invalid BAT: ${(e as Error).message}`);
      throw e;
    }
    let metaEnd: number;
    try {
      metaEnd = Math.ceil(v.metadataEnd() / SECTOR);
    } catch (e) {
      bad(`error calculating end of metadata: ${(e as Error).message}`);
      throw e;
    }
    const footerSec = Math.floor((v.fileSize - SECTOR) / SECTOR);
    const starts: number[] = [];
    for (let i = 0; i < h.maxBat; i++) {
      const e = bat[i]!;
      if (e === BAT_UNUSED) continue;
      if (e < metaEnd) bad(`BAT entry ${i} (sector ${e}) overlaps metadata (ends at sector ${metaEnd})`);
      if (e + BLOCK_SECTORS_ON_DISK > footerSec) bad(`BAT entry ${i} (sector ${e}) overlaps the footer`);
      starts.push(e);
    }
    if (!opts.skipBatOverlap) {
      starts.sort((a, b) => a - b);
      for (let i = 1; i < starts.length; i++) {
        if (starts[i]! < starts[i - 1]! + BLOCK_SECTORS_ON_DISK) bad(`BAT entries overlap at sector ${starts[i]}`);
      }
    }
    // batmap
    if (v.hasBatmap) {
      let bh;
      try {
        bh = v.loadBatmap();
      } catch {
        bad('failed to get batmap header');
      }
      const map = v.batmap()!;
      if (!bh || bh.version !== 0x00010002) bad('invalid batmap version');
      if (bh!.sizeSectors * SECTOR < Math.ceil(h.maxBat / 8)) bad('batmap too small');
      if (byteChecksum(map) !== bh!.checksum) bad('batmap checksum mismatch');
      for (let i = 0; i < h.maxBat; i++) {
        if (testBit(map, i) && bat[i] === BAT_UNUSED) bad(`batmap bit set for unallocated block ${i}`);
      }
    }
    // locators
    if (v.isDiff) {
      const name = decodeParentName(h.prtName);
      for (const l of h.locators) {
        const s = decodeLocator(v, l);
        if (s === null) continue;
        if (basename(s) !== name) bad(`parent locator ${s} does not match the parent name ${name}`);
      }
      let parentPath: string;
      try {
        parentPath = resolveParent(v);
      } catch (e) {
        throw new CheckFailure(errnoOf(e) === ENOENT ? EINVAL : errnoOf(e), `error finding parent ${name}: parent missing`);
      }
      if (!opts.ignoreParentUuid && !parentIsRaw(v)) {
        let p: VhdFile;
        try {
          p = VhdFile.open(parentPath, { allowBackupFallback: true });
        } catch (e) {
          throw new CheckFailure(EINVAL, `error opening parent ${parentPath}: ${(e as Error).message}`);
        }
        const same = p.footer.uuid.equals(h.prtUuid);
        p.close();
        if (!same) bad(`parent ${parentPath} uuid does not match the child's parent uuid`);
      }
    }
    if (opts.bitmaps) checkBitmaps(v);
    return opts.stats ? { vhd: 'ok', stats: stats(v, path) } : { vhd: 'ok' };
  } finally {
    v.close();
  }
}

/** -b: no data where the bitmap is clear. */
function checkBitmaps(v: VhdFile): void {
  const buf = Buffer.alloc(SECTOR * SECTORS_PER_BLOCK);
  for (let b = 0; b < v.maxBat; b++) {
    const s = v.blockSector(b);
    if (s === null || v.blockFull(b)) continue;
    const bm = v.readBitmap(b);
    v.readAt(buf, (s + 1) * SECTOR);
    for (let i = 0; i < SECTORS_PER_BLOCK; i++) {
      if (!testBit(bm, i) && !isZero(buf.subarray(i * SECTOR, (i + 1) * SECTOR))) {
        bad(`block ${b} sector ${i} holds data but its bitmap bit is clear`);
      }
    }
  }
}

/** Is logical sector `sec` written in image `img` (bitmap bit, or whole block when the batmap says full)? */
function written(img: VhdFile | RawImage, sec: number): boolean {
  if (img instanceof RawImage) return sec * SECTOR < img.size;
  if (img.isFixed) return sec < img.sectors;
  const blk = Math.floor(sec / SECTORS_PER_BLOCK);
  if (blk >= img.maxBat || img.blockSector(blk) === null) return false;
  return img.blockFull(blk) || testBit(img.readBitmap(blk), sec % SECTORS_PER_BLOCK);
}

const pct = (n: number, of: number) => (of ? ((n * 100) / of).toFixed(2) : '0.00');

/**
 * -s: `NAME: secs allocated: 0x.. secs written: 0x.. (P%)`, and for a differencing
 * disk also how many written sectors its parent / none of its ancestors hold.
 */
function stats(v: VhdFile, name: string): string {
  let allocated = 0;
  let writtenSecs = 0;
  let notInParent = 0;
  let notInAncestors = 0;
  let chain: Chain | null = null;
  if (v.isDiff) {
    try {
      chain = Chain.open(v.path, { allowBackupFallback: true });
    } catch {
      chain = null;
    }
  }
  try {
    const ancestors = chain ? chain.images.slice(1) : [];
    for (let b = 0; b < v.maxBat; b++) {
      if (v.blockSector(b) === null) continue;
      allocated += SECTORS_PER_BLOCK;
      const full = v.blockFull(b);
      const bm = full ? null : Buffer.from(v.readBitmap(b));
      for (let i = 0; i < SECTORS_PER_BLOCK; i++) {
        if (bm && !testBit(bm, i)) continue;
        writtenSecs++;
        if (ancestors.length === 0) continue;
        const sec = b * SECTORS_PER_BLOCK + i;
        if (!written(ancestors[0]!, sec)) {
          notInParent++;
          if (!ancestors.slice(1).some((a) => written(a, sec))) notInAncestors++;
        }
      }
    }
  } finally {
    chain?.close();
  }
  let line = `${name}: secs allocated: 0x${allocated.toString(16)} secs written: 0x${writtenSecs.toString(16)} (${pct(writtenSecs, allocated)}%)`;
  if (chain) {
    line += ` secs not in parent: 0x${notInParent.toString(16)} (${pct(notInParent, writtenSecs)}%)`;
    line += ` secs not in ancestors: 0x${notInAncestors.toString(16)} (${pct(notInAncestors, writtenSecs)}%)`;
  }
  return line;
}
