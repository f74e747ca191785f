// One open VHD file: its footer, header, BAT, batmap and sector bitmaps, read and
// written with positional I/O (never the whole disk in memory). Writes follow the
// crash-safe order data -> bitmap -> BAT/batmap -> footers.
import { splitDevT } from '../block-device.js';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { EINVAL, VhdError } from './errors.js';
import {
  BAT_UNUSED,
  BLOCK_SECTORS_ON_DISK,
  BLOCK_SIZE,
  DISK_DIFF,
  DISK_DYNAMIC,
  DISK_FIXED,
  SECTOR,
  SECTORS_PER_BLOCK,
  batmapChecksum,
  decodeBatmapHeader,
  decodeFooter,
  decodeHeader,
  encodeBatmapHeader,
  encodeFooter,
  encodeHeader,
  footerProblem,
  hasBatmapVersion,
  headerProblem,
  roundUp,
  type BatmapHeader,
  type Footer,
  type Header,
} from './format.js';

// Sizes of files and block devices. fstat reports 0 for a block device, so its
// size comes from sysfs (/sys/dev/block/<major>:<minor>/size, in 512-byte sectors).
export interface SizeInfo {
  size: number;
  isBlock: boolean;
}

export function sizeOfFd(fd: number, _path: string): SizeInfo {
  const st = fstatSync(fd, { bigint: true });
  if (!st.isBlockDevice()) return { size: Number(st.size), isBlock: false };
  // By device number, not by name: /dev/mapper/<vg>-<lv> and /dev/<vg>/<lv> are
  // not the kernel's names (dm-N), so /sys/class/block/<name> would not exist.
  const { major, minor } = splitDevT(st.rdev);
  const sectors = Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'latin1').trim());
  return { size: sectors * 512, isBlock: true };
}

export interface OpenOptions {
  /** Open read-write. */
  write?: boolean;
  /** Use the footer copy at offset 0 (repair -b). */
  backupFooter?: boolean;
  /**
   * Allow falling back to the offset-0 copy when the primary footer is bad, as
   * libvhd does for every open without VHD_OPEN_STRICT (vhd-util's query, set,
   * modify, resize, coalesce): a VHD that xapi made in a thick LV has its
   * primary footer after its data, not at the end of the LV.
   */
  allowBackupFallback?: boolean;
}

export function readFully(fd: number, buf: Uint8Array, pos: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function writeFully(fd: number, buf: Uint8Array, pos: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

/** At most 7 sectors pad a new block so its data starts on a 4 KiB boundary. */
const ZERO_GAP = Buffer.alloc(8 * SECTOR);

export class VhdFile {
  readonly fd: number;
  fileSize: number;
  /** A block device (an LV, a loop device): never truncated, sized from sysfs. */
  readonly isBlock: boolean;
  footer: Footer;
  /** Where the footer was read from: 'primary' (end of file) or 'backup' (offset 0). */
  footerSource: 'primary' | 'backup';
  primaryFooterProblem: string | null;
  header: Header | null = null;
  private batArr: Uint32Array | null = null;
  private maxEndCache: number | null = null;
  batmapHeader: BatmapHeader | null = null;
  private batmapBuf: Buffer | null = null;
  private bitmapCache: { blk: number; buf: Buffer } | null = null;
  private dirty = false;
  private scratch: Buffer | null = null;
  private endSectorsCache: number | null = null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly writable: boolean,
    opts: OpenOptions,
  ) {
    this.fd = fd;
    const si = sizeOfFd(fd, path);
    this.fileSize = si.size;
    this.isBlock = si.isBlock;
    const primary = Buffer.alloc(SECTOR);
    const got = this.fileSize >= SECTOR ? readFully(fd, primary, this.fileSize - SECTOR) : 0;
    this.primaryFooterProblem = got < SECTOR ? 'invalid cookie' : footerProblem(primary);
    let chosen = primary;
    this.footerSource = 'primary';
    if (opts.backupFooter || this.primaryFooterProblem) {
      if (!opts.backupFooter && !opts.allowBackupFallback) {
        throw new VhdError(EINVAL, `primary footer invalid: ${this.primaryFooterProblem}`);
      }
      const backup = Buffer.alloc(SECTOR);
      readFully(fd, backup, 0);
      const p = footerProblem(backup);
      if (p) throw new VhdError(EINVAL, `footer invalid: ${p}`);
      chosen = backup;
      this.footerSource = 'backup';
    }
    this.footer = decodeFooter(chosen);
    const t = this.footer.type;
    if (t !== DISK_FIXED && t !== DISK_DYNAMIC && t !== DISK_DIFF) {
      throw new VhdError(EINVAL, `invalid disk type ${t}`);
    }
    if (t === DISK_FIXED && this.footerSource === 'backup') {
      throw new VhdError(EINVAL, 'fixed disk has no backup footer');
    }
    if (t !== DISK_FIXED) {
      const hb = Buffer.alloc(1024);
      const off = Number(this.footer.dataOffset);
      if (!Number.isSafeInteger(off) || readFully(fd, hb, off) < 1024) {
        throw new VhdError(EINVAL, 'failed to read header');
      }
      const hp = headerProblem(hb);
      if (hp) throw new VhdError(EINVAL, `header invalid: ${hp}`);
      this.header = decodeHeader(hb);
      if (this.header.blockSize !== BLOCK_SIZE) {
        throw new VhdError(EINVAL, `unsupported block size ${this.header.blockSize} (only 2 MiB)`);
      }
    }
  }

  static open(path: string, opts: OpenOptions = {}): VhdFile {
    const fd = openSync(path, opts.write ? 'r+' : 'r');
    try {
      return new VhdFile(path, fd, !!opts.write, opts);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  get isFixed(): boolean {
    return this.footer.type === DISK_FIXED;
  }
  get isDiff(): boolean {
    return this.footer.type === DISK_DIFF;
  }
  get currSize(): number {
    return Number(this.footer.currSize);
  }
  get sectors(): number {
    return Math.floor(this.currSize / SECTOR);
  }
  get maxBat(): number {
    return this.header?.maxBat ?? 0;
  }
  /** Blocks covering the current size (may be fewer than maxBat with -S preallocation). */
  get blocksInSize(): number {
    return Math.min(this.maxBat, Math.ceil(this.currSize / BLOCK_SIZE));
  }
  get hasBatmap(): boolean {
    return this.header !== null && hasBatmapVersion(this.footer);
  }

  private hdr(): Header {
    if (!this.header) throw new VhdError(EINVAL, `${this.path} is a fixed disk (no BAT)`);
    return this.header;
  }

  // ---- BAT ---------------------------------------------------------------

  /** BAT entries in host byte order (the 4 MiB of a 2 TiB disk, read once). */
  bat(): Uint32Array {
    if (this.batArr) return this.batArr;
    const h = this.hdr();
    const buf = Buffer.alloc(h.maxBat * 4);
    if (readFully(this.fd, buf, Number(h.tableOffset)) < buf.length) {
      throw new VhdError(EINVAL, 'failed to read BAT: file too short');
    }
    buf.swap32();
    const arr = new Uint32Array(buf.buffer, buf.byteOffset, h.maxBat);
    // Refuse entries pointing past the end of the file: reads there would be short
    // and writes would corrupt whatever the caller believes is there. The same pass
    // finds the last block, for the end-of-data computation.
    const lastStart = this.fileSize / SECTOR - BLOCK_SECTORS_ON_DISK;
    let maxEnd = 0;
    for (let i = 0; i < arr.length; i++) {
      const e = arr[i]!;
      if (e === BAT_UNUSED) continue;
      if (e > lastStart) throw new VhdError(EINVAL, `BAT entry ${i} (sector ${e}) points past the end of the file`);
      if (e + BLOCK_SECTORS_ON_DISK > maxEnd) maxEnd = e + BLOCK_SECTORS_ON_DISK;
    }
    this.maxEndCache = maxEnd;
    this.batArr = arr;
    return arr;
  }

  /** The BAT as stored on disk (big-endian, padded to a sector). */
  batOnDisk(): Buffer {
    const arr = this.bat();
    const out = Buffer.alloc(roundUp(arr.length * 4, SECTOR));
    for (let i = 0; i < arr.length; i++) out.writeUInt32BE(arr[i]!, i * 4);
    return out;
  }

  /** Sector of the block's bitmap, or null when unallocated. */
  blockSector(blk: number): number | null {
    const e = this.bat()[blk]!;
    return e === BAT_UNUSED ? null : e;
  }

  allocatedCount(): number {
    const bat = this.bat();
    let n = 0;
    const lim = this.blocksInSize;
    for (let i = 0; i < lim; i++) if (bat[i] !== BAT_UNUSED) n++;
    return n;
  }

  // ---- batmap ------------------------------------------------------------

  batmapHeaderOffset(): number {
    const h = this.hdr();
    return Number(h.tableOffset) + roundUp(h.maxBat * 4, SECTOR);
  }

  loadBatmap(): BatmapHeader | null {
    if (!this.hasBatmap) return null;
    if (this.batmapHeader) return this.batmapHeader;
    const b = Buffer.alloc(SECTOR);
    readFully(this.fd, b, this.batmapHeaderOffset());
    const bh = decodeBatmapHeader(b);
    if (bh.cookie !== 'tdbatmap') throw new VhdError(EINVAL, 'failed to get batmap header');
    const map = Buffer.alloc(bh.sizeSectors * SECTOR);
    readFully(this.fd, map, Number(bh.offset));
    this.batmapHeader = bh;
    this.batmapBuf = map;
    return bh;
  }

  batmap(): Buffer | null {
    this.loadBatmap();
    return this.batmapBuf;
  }

  batmapTest(blk: number): boolean {
    const m = this.batmap();
    if (!m) return false;
    return ((m[blk >> 3] ?? 0) & (0x80 >> (blk & 7))) !== 0;
  }

  private batmapSet(blk: number, on: boolean): void {
    const m = this.batmap();
    const bh = this.batmapHeader;
    if (!m || !bh) return;
    const mask = 0x80 >> (blk & 7);
    const byte = m[blk >> 3]!;
    const next = on ? byte | mask : byte & ~mask;
    if (next === byte) return;
    m[blk >> 3] = next;
    const secOff = (blk >> 3) & ~(SECTOR - 1);
    writeFully(this.fd, m.subarray(secOff, secOff + SECTOR), Number(bh.offset) + secOff);
    this.writeBatmapHeader();
  }

  writeBatmapHeader(): void {
    const bh = this.batmapHeader;
    const m = this.batmapBuf;
    if (!bh || !m) return;
    bh.checksum = batmapChecksum(m);
    writeFully(this.fd, encodeBatmapHeader(bh), this.batmapHeaderOffset());
    this.dirty = true;
  }

  // ---- bitmaps -----------------------------------------------------------

  readBitmap(blk: number): Buffer {
    if (this.bitmapCache?.blk === blk) return this.bitmapCache.buf;
    const s = this.blockSector(blk);
    const buf = Buffer.alloc(SECTOR);
    if (s !== null) readFully(this.fd, buf, s * SECTOR);
    this.bitmapCache = { blk, buf };
    return buf;
  }

  /** True when a block's sectors are all written: batmap bit, else an all-ones bitmap. */
  blockFull(blk: number): boolean {
    if (this.batmapTest(blk)) return true;
    const bm = this.readBitmap(blk);
    for (let i = 0; i < SECTOR; i++) if (bm[i] !== 0xff) return false;
    return true;
  }

  // ---- geometry of the file ----------------------------------------------

  /** End of metadata in bytes (header, BAT, batmap, locator payloads). */
  metadataEnd(): number {
    const h = this.hdr();
    let end = Math.max(Number(this.footer.dataOffset) + 1024, Number(h.tableOffset) + roundUp(h.maxBat * 4, SECTOR));
    if (this.hasBatmap) {
      const bh = this.loadBatmap();
      if (bh) end = Math.max(end, this.batmapHeaderOffset() + SECTOR, Number(bh.offset) + bh.sizeSectors * SECTOR);
    }
    for (const l of h.locators) {
      if (l.code === 0) continue;
      const space = l.dataSpace < 512 ? l.dataSpace * SECTOR : l.dataSpace;
      end = Math.max(end, Number(l.dataOffset) + roundUp(space, SECTOR));
    }
    return end;
  }

  /** End of data in sectors: metadata or the last allocated block. */
  endSectors(): number {
    if (this.endSectorsCache !== null) return this.endSectorsCache;
    this.bat();
    const end = Math.max(Math.ceil(this.metadataEnd() / SECTOR), this.maxEndCache ?? 0);
    this.endSectorsCache = end;
    return end;
  }

  /** What `query -s` prints: computed end of data plus the footer (file size for fixed). */
  physicalSize(): number {
    if (this.isFixed) return this.fileSize;
    return this.endSectors() * SECTOR + SECTOR;
  }

  // ---- data I/O ----------------------------------------------------------

  readAt(buf: Uint8Array, pos: number): void {
    const n = readFully(this.fd, buf, pos);
    if (n < buf.length) buf.fill(0, n);
  }

  writeAt(buf: Uint8Array, pos: number): void {
    if (!this.writable) throw new VhdError(EINVAL, `${this.path} is open read-only`);
    writeFully(this.fd, buf, pos);
    this.dirty = true;
  }

  /**
   * Write whole sectors of this image at virtual `sector` (no chain involved):
   * allocates missing blocks, sets bitmap bits and batmap bits, rewrites footers
   * when the file grew.
   */
  writeSectors(sector: number, data: Uint8Array, opts: { sparse?: boolean } = {}): void {
    if (data.length % SECTOR !== 0) throw new VhdError(EINVAL, 'write length is not a whole number of sectors');
    const count = data.length / SECTOR;
    if (sector < 0 || sector + count > this.sectors) {
      throw new VhdError(EINVAL, `write of ${count} sectors at ${sector} is beyond the disk size (${this.sectors} sectors)`);
    }
    if (this.isFixed) {
      this.writeAt(data, sector * SECTOR);
      return;
    }
    let done = 0;
    let grew = false;
    while (done < count) {
      const s = sector + done;
      const blk = Math.floor(s / SECTORS_PER_BLOCK);
      const inBlk = s % SECTORS_PER_BLOCK;
      const n = Math.min(count - done, SECTORS_PER_BLOCK - inBlk);
      const part = data.subarray(done * SECTOR, (done + n) * SECTOR);
      if (this.writeBlockPart(blk, inBlk, part, opts.sparse ?? false)) grew = true;
      done += n;
    }
    if (grew) this.writeFooters();
  }

  /** Returns true when a block was allocated (file grew). */
  private writeBlockPart(blk: number, inBlk: number, part: Uint8Array, sparse: boolean): boolean {
    const n = part.length / SECTOR;
    const whole = inBlk === 0 && n === SECTORS_PER_BLOCK;
    let bs = this.blockSector(blk);
    let grew = false;
    const bitmap = Buffer.alloc(SECTOR);
    if (bs === null) {
      // Append at the end of data; blktap pushes the block so its data starts on
      // a 4 KiB boundary (bitmap sector = 7 mod 8). The gap (holding the old
      // footer) is zeroed; the rest of a partial block is zero-filled unless sparse.
      const oldEnd = this.endSectors();
      let start = oldEnd;
      while (start % 8 !== 7) start++;
      if (this.isBlock && (start + BLOCK_SECTORS_ON_DISK) * SECTOR + SECTOR > this.fileSize) {
        throw new VhdError(28, `${this.path}: no room on the device for block ${blk}`);
      }
      setBits(bitmap, inBlk, n);
      const gap = (start - oldEnd) * SECTOR;
      // data first, then the gap and the bitmap sector, then (below) BAT, batmap, footers
      if (whole) {
        this.writeAt(part, (start + 1) * SECTOR);
      } else if (!sparse) {
        // one reused scratch block: coalescing 1 GiB must not allocate 1 GiB of garbage
        const scratch = (this.scratch ??= Buffer.alloc(BLOCK_SIZE));
        scratch.fill(0);
        scratch.set(part, inBlk * SECTOR);
        this.writeAt(scratch, (start + 1) * SECTOR);
      } else {
        this.writeAt(part, (start + 1 + inBlk) * SECTOR);
        // make sure the block's extent exists even if the tail was never written
        if (!this.isBlock && (start + BLOCK_SECTORS_ON_DISK) * SECTOR > this.fileSize) {
          ftruncateSync(this.fd, (start + BLOCK_SECTORS_ON_DISK) * SECTOR);
        }
      }
      if (gap > 0) this.writeAt(ZERO_GAP.subarray(0, gap), oldEnd * SECTOR);
      this.writeAt(bitmap, start * SECTOR);
      bs = start;
      if (!this.isBlock) this.fileSize = Math.max(this.fileSize, (start + BLOCK_SECTORS_ON_DISK) * SECTOR);
      const e = Buffer.alloc(4);
      e.writeUInt32BE(start);
      const batPos = Number(this.hdr().tableOffset) + blk * 4;
      this.bat()[blk] = start;
      this.writeAt(e, batPos);
      this.endSectorsCache = start + BLOCK_SECTORS_ON_DISK;
      this.maxEndCache = Math.max(this.maxEndCache ?? 0, start + BLOCK_SECTORS_ON_DISK);
      this.bitmapCache = { blk, buf: bitmap };
      grew = true;
    } else {
      this.writeAt(part, (bs + 1 + inBlk) * SECTOR);
      const bm = this.readBitmap(blk);
      if (!bitsAllSet(bm, inBlk, n)) {
        setBits(bm, inBlk, n);
        this.writeAt(bm, bs * SECTOR);
      }
    }
    if (!this.batmapTest(blk) && this.blockFull(blk)) this.batmapSet(blk, true);
    return grew;
  }

  /** Rewrite the footer at the computed end of data and its copy at offset 0. */
  writeFooters(opts: { truncate?: boolean } = {}): void {
    const buf = encodeFooter(this.footer);
    if (this.isFixed) {
      this.writeAt(buf, this.currSize);
      if (opts.truncate && !this.isBlock) ftruncateSync(this.fd, this.currSize + SECTOR);
      if (!this.isBlock) this.fileSize = Math.max(this.fileSize, this.currSize + SECTOR);
      return;
    }
    const end = this.endSectors() * SECTOR;
    if (this.isBlock) {
      // blktap: on a block device the primary footer lives at the end of the device
      if (end + SECTOR > this.fileSize) throw new VhdError(28, `${this.path}: device too small for the data (${end + SECTOR} bytes)`);
      this.writeAt(buf, this.fileSize - SECTOR);
    } else {
      this.writeAt(buf, end);
      if (opts.truncate && this.fileSize !== end + SECTOR) ftruncateSync(this.fd, end + SECTOR);
      this.fileSize = opts.truncate ? end + SECTOR : Math.max(this.fileSize, end + SECTOR);
    }
    this.writeAt(buf, 0);
  }

  footerBytes(): Buffer {
    return encodeFooter(this.footer);
  }

  writeHeader(): void {
    this.writeAt(encodeHeader(this.hdr()), Number(this.footer.dataOffset));
  }

  /** Forget cached metadata after someone rewrote it on disk (resize). */
  invalidate(): void {
    this.batArr = null;
    this.maxEndCache = null;
    this.batmapBuf = null;
    this.batmapHeader = null;
    this.bitmapCache = null;
    this.endSectorsCache = null;
    if (!this.isBlock) this.fileSize = fstatSync(this.fd).size;
  }

  close(): void {
    if (this.dirty) fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

export function setBits(bm: Buffer, first: number, n: number): void {
  for (let i = first; i < first + n; i++) bm[i >> 3] = bm[i >> 3]! | (0x80 >> (i & 7));
}

export function bitsAllSet(bm: Buffer, first: number, n: number): boolean {
  for (let i = first; i < first + n; i++) if ((bm[i >> 3]! & (0x80 >> (i & 7))) === 0) return false;
  return true;
}

export function testBit(bm: Uint8Array, i: number): boolean {
  return (bm[i >> 3]! & (0x80 >> (i & 7))) !== 0;
}
