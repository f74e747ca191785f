// Resizing a VHD. The journaled path first saves every byte range it is going to
// overwrite (plus the original file length) to a journal file and fsyncs it, so
// `revert` can restore the file byte for byte; the journal is deleted on success.
// The journal format is ours (blktap's is not documented): see JOURNAL_MAGIC.
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, unlinkSync } from 'node:fs';
import { EEXIST, EINVAL, ENOENT, ENOSYS, VhdError } from './errors.js';
import {
  BAT_UNUSED,
  BLOCK_SECTORS_ON_DISK,
  BLOCK_SIZE,
  CREATOR_TAP,
  LOCATOR_SPACE,
  SECTOR,
  TABLE_OFFSET,
  encodeBatmapHeader,
  geometry,
  metadataLayout,
  batmapChecksum,
} from './format.js';
import { VhdFile, readFully, writeFully } from './vhd-file.js';

const JOURNAL_MAGIC = 'smapi-ts-vhd-resize-journal-v1\0\0';
const MiB = 1024 * 1024;

interface Range {
  offset: number;
  data: Buffer;
}

function writeJournal(path: string, fileSize: number, ranges: Range[]): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    const head = Buffer.alloc(SECTOR);
    head.write(JOURNAL_MAGIC, 0, 'latin1');
    head.writeBigUInt64BE(BigInt(fileSize), 32);
    head.writeUInt32BE(ranges.length, 40);
    let pos = SECTOR;
    writeFully(fd, head, 0);
    for (const r of ranges) {
      const rh = Buffer.alloc(16);
      rh.writeBigUInt64BE(BigInt(r.offset), 0);
      rh.writeBigUInt64BE(BigInt(r.data.length), 8);
      writeFully(fd, rh, pos);
      writeFully(fd, r.data, pos + 16);
      pos += 16 + r.data.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function saveRange(v: VhdFile, offset: number, end: number): Range | null {
  const e = Math.min(end, v.fileSize);
  if (e <= offset) return null;
  const data = Buffer.alloc(e - offset);
  readFully(v.fd, data, offset);
  return { offset, data };
}

/** `revert -n NAME -j JOURNAL`: restore the saved ranges and length, then delete the journal. */
export function revertFromJournal(vhdPath: string, journalPath: string): void {
  if (!existsSync(journalPath)) throw new VhdError(ENOENT, 'opening journal failed');
  const jfd = openSync(journalPath, 'r');
  try {
    const head = Buffer.alloc(SECTOR);
    readFully(jfd, head, 0);
    if (head.toString('latin1', 0, 32) !== JOURNAL_MAGIC) throw new VhdError(EINVAL, `${journalPath} is not a resize journal`);
    const fileSize = Number(head.readBigUInt64BE(32));
    const count = head.readUInt32BE(40);
    const jsize = fstatSync(jfd).size;
    const fd = openSync(vhdPath, 'r+');
    try {
      let pos = SECTOR;
      for (let i = 0; i < count; i++) {
        const rh = Buffer.alloc(16);
        if (readFully(jfd, rh, pos) < 16) throw new VhdError(EINVAL, 'journal truncated');
        const offset = Number(rh.readBigUInt64BE(0));
        const len = Number(rh.readBigUInt64BE(8));
        if (pos + 16 + len > jsize) throw new VhdError(EINVAL, 'journal truncated');
        // copy in 2 MiB pieces: journals of moved blocks can be large
        for (let done = 0; done < len; done += BLOCK_SIZE) {
          const piece = Buffer.alloc(Math.min(BLOCK_SIZE, len - done));
          readFully(jfd, piece, pos + 16 + done);
          writeFully(fd, piece, offset + done);
        }
        pos += 16 + len;
      }
      ftruncateSync(fd, fileSize);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(jfd);
  }
  unlinkSync(journalPath);
}

export function resizeSizeBytes(mib: number): number {
  return Math.ceil((mib * MiB) / BLOCK_SIZE) * BLOCK_SIZE;
}

/** `resize -f`: raise the current size within the preallocated BAT, no journal. */
export function resizeFast(path: string, sizeMiB: number): void {
  const v = VhdFile.open(path, { write: true, allowBackupFallback: true });
  try {
    requireTap(v, path);
    const size = resizeSizeBytes(sizeMiB);
    if (size < v.currSize) throw new VhdError(EINVAL, `${path}: size (${size}) < curr size (${v.currSize})`);
    if (v.isFixed || size > v.maxBat * BLOCK_SIZE) {
      throw new VhdError(EINVAL, `${path}: size ${size} is beyond the preallocated metadata (${v.maxBat * BLOCK_SIZE} bytes)`);
    }
    v.bat();
    setCurrSize(v, size);
    v.writeFooters();
  } finally {
    v.close();
  }
}

function requireTap(v: VhdFile, path: string): void {
  if (v.footer.creatorApp !== CREATOR_TAP) throw new VhdError(EINVAL, `${path} not created by xen; resize not supported`);
}

function setCurrSize(v: VhdFile, size: number): void {
  v.footer.currSize = BigInt(size);
  v.footer.geometry = geometry(BigInt(size));
}

/** Test hook (as blktap's VHD_UTIL_TEST_FAIL_RESIZE_METADATA_MOVED): stop after moving metadata. */
function failPoint(name: string): void {
  if (process.env[`VHD_UTIL_TEST_FAIL_RESIZE_${name}`] === '1') {
    throw new VhdError(EINVAL, `Failing at ${name}`);
  }
}

/** `resize -j`: journaled offline resize (dynamic: grow only; fixed: grow or shrink). */
export function resizeJournaled(path: string, sizeMiB: number, journalPath: string): void {
  if (existsSync(journalPath)) throw new VhdError(EEXIST, `journal ${journalPath} already exists`);
  const v = VhdFile.open(path, { write: true, allowBackupFallback: true });
  try {
    requireTap(v, path);
    const size = resizeSizeBytes(sizeMiB);
    if (v.isFixed) {
      const ranges = [saveRange(v, Math.min(size, v.currSize), v.fileSize)].filter((r): r is Range => r !== null);
      writeJournal(journalPath, v.fileSize, ranges);
      failPoint('METADATA_MOVED');
      ftruncateSync(v.fd, size);
      setCurrSize(v, size);
      v.writeFooters({ truncate: true });
    } else {
      if (size < v.currSize) throw new VhdError(ENOSYS, 'dynamic shrink not fully implemented');
      v.bat();
      const newMaxBat = Math.ceil(size / BLOCK_SIZE);
      if (newMaxBat <= v.maxBat) {
      const end = v.endSectors() * SECTOR;
      const ranges = [saveRange(v, 0, SECTOR), saveRange(v, end, v.fileSize)].filter((r): r is Range => r !== null);
      writeJournal(journalPath, v.fileSize, ranges);
      failPoint('METADATA_MOVED');
      setCurrSize(v, size);
      v.writeFooters();
    } else {
        growMetadata(v, size, newMaxBat, journalPath);
      }
    }
  } finally {
    // a failure after the journal was written leaves it in place for `revert`
    v.close();
  }
  unlinkSync(journalPath);
}

/** Grow the BAT (and batmap/locators after it), moving data blocks that are in the way to the end. */
function growMetadata(v: VhdFile, size: number, newMaxBat: number, journalPath: string): void {
  const h = v.header!;
  if (Number(h.tableOffset) !== TABLE_OFFSET) throw new VhdError(EINVAL, 'unexpected BAT offset');
  const lay = metadataLayout(newMaxBat, v.isDiff);
  const metaEndSec = Math.ceil(lay.end / SECTOR);
  const bat = Uint32Array.from(v.bat());
  const oldMap = v.batmap() ? Buffer.from(v.batmap()!) : null;
  const oldBh = v.loadBatmap();
  // locator payloads move with the metadata
  const locs = h.locators.map((l) => {
    if (l.code === 0) return null;
    const data = Buffer.alloc(l.dataLen);
    v.readAt(data, Number(l.dataOffset));
    return data;
  });
  const moving: number[] = [];
  for (let i = 0; i < v.maxBat; i++) {
    const e = bat[i]!;
    if (e !== BAT_UNUSED && e < metaEndSec) moving.push(i);
  }
  moving.sort((a, b) => bat[a]! - bat[b]!);
  const oldEnd = v.endSectors();
  let saveEnd = lay.end;
  for (const i of moving) saveEnd = Math.max(saveEnd, (bat[i]! + BLOCK_SECTORS_ON_DISK) * SECTOR);
  const ranges = [saveRange(v, 0, saveEnd), saveRange(v, Math.max(saveEnd, oldEnd * SECTOR), v.fileSize)].filter(
    (r): r is Range => r !== null,
  );
  writeJournal(journalPath, v.fileSize, ranges);
  // 1. copy blocks in the way to the end of data (data first, then the BAT)
  let next = Math.max(oldEnd, metaEndSec);
  const buf = Buffer.alloc(BLOCK_SECTORS_ON_DISK * SECTOR);
  for (const i of moving) {
    while (next % 8 !== 7) next++;
    const from = bat[i]!;
    readFully(v.fd, buf, from * SECTOR);
    writeFully(v.fd, buf, next * SECTOR);
    bat[i] = next;
    next += BLOCK_SECTORS_ON_DISK;
  }
  if (moving.length) fsyncSync(v.fd);
  failPoint('METADATA_MOVED');
  // 2. zero the whole new metadata area and whatever old blocks were below it
  for (let pos = TABLE_OFFSET; pos < saveEnd; pos += BLOCK_SIZE) {
    writeFully(v.fd, Buffer.alloc(Math.min(BLOCK_SIZE, saveEnd - pos)), pos);
  }
  // 3. new BAT, batmap, locators, header, footers
  const newBat = Buffer.alloc(lay.batBytes);
  newBat.fill(0xff, 0, newMaxBat * 4);
  for (let i = 0; i < bat.length; i++) newBat.writeUInt32BE(bat[i]!, i * 4);
  writeFully(v.fd, newBat, TABLE_OFFSET);
  if (oldBh && oldMap) {
    const map = Buffer.alloc(lay.batmapSectors * SECTOR);
    oldMap.copy(map, 0, 0, Math.min(oldMap.length, map.length));
    const bh = { ...oldBh, offset: BigInt(lay.batmapOffset), sizeSectors: lay.batmapSectors, checksum: batmapChecksum(map) };
    writeFully(v.fd, map, lay.batmapOffset);
    writeFully(v.fd, encodeBatmapHeader(bh), lay.batmapHeaderOffset);
  }
  let slot = 0;
  h.locators.forEach((l, i) => {
    const data = locs[i];
    if (!data) return;
    const off = lay.locatorsOffset + slot * LOCATOR_SPACE;
    if (slot >= 3) throw new VhdError(EINVAL, 'more than three parent locators: cannot relocate');
    writeFully(v.fd, data, off);
    l.dataOffset = BigInt(off);
    l.dataSpace = LOCATOR_SPACE;
    slot++;
  });
  h.maxBat = newMaxBat;
  v.writeHeader();
  v.invalidate();
  setCurrSize(v, size);
  v.writeFooters();
}
