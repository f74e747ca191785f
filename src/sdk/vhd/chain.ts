// A VHD with its ancestors, read as one virtual disk: a sector comes from the first
// image whose block is allocated and whose bitmap bit is set, else from the next
// parent, else zeros. Raw parents are read at the same offset.
import { closeSync, openSync } from 'node:fs';
import { ELOOP, VhdError } from './errors.js';
import { SECTOR, SECTORS_PER_BLOCK, isZero } from './format.js';
import { canonical, resolveParent } from './locators.js';
import { VhdFile, readFully, testBit, type OpenOptions, sizeOfFd } from './vhd-file.js';

/** A raw file used as the bottom of a chain (snapshot -m). */
export class RawImage {
  readonly size: number;
  constructor(
    readonly path: string,
    readonly fd: number,
  ) {
    this.size = sizeOfFd(fd, path).size;
  }
  static open(path: string, write = false): RawImage {
    return new RawImage(path, openSync(path, write ? 'r+' : 'r'));
  }
  close(): void {
    closeSync(this.fd);
  }
}

export type ChainImage = VhdFile | RawImage;

/** Is the parent of this differencing disk a raw file? blktap: the parent UUID is null. */
export function parentIsRaw(vhd: VhdFile): boolean {
  return vhd.isDiff && vhd.header !== null && isZero(vhd.header.prtUuid);
}

export class Chain {
  private constructor(readonly images: ChainImage[]) {}

  /** Open `path` and every ancestor (read-only unless `top` says otherwise). */
  static open(path: string, top: OpenOptions = {}): Chain {
    const images: ChainImage[] = [];
    const seen = new Set<string>();
    try {
      let vhd = VhdFile.open(path, top);
      images.push(vhd);
      seen.add(canonical(path));
      while (vhd.isDiff) {
        const parentPath = resolveParent(vhd);
        if (seen.has(parentPath)) throw new VhdError(ELOOP, `parent loop: ${parentPath} is its own ancestor`);
        seen.add(parentPath);
        if (parentIsRaw(vhd)) {
          images.push(RawImage.open(parentPath));
          break;
        }
        vhd = VhdFile.open(parentPath, { allowBackupFallback: true });
        images.push(vhd);
      }
      return new Chain(images);
    } catch (e) {
      for (const i of images) i.close();
      throw e;
    }
  }

  get top(): VhdFile {
    return this.images[0] as VhdFile;
  }

  get sectors(): number {
    return this.top.sectors;
  }

  /**
   * Read `out.length / 512` sectors at `sector` into `out` (which this zero-fills
   * first). Reads run by run, so a 2 MiB block costs a handful of syscalls.
   */
  read(sector: number, out: Buffer): void {
    out.fill(0);
    const count = out.length / SECTOR;
    let done = 0;
    while (done < count) {
      const s = sector + done;
      const n = Math.min(count - done, SECTORS_PER_BLOCK - (s % SECTORS_PER_BLOCK));
      this.readInBlock(s, out.subarray(done * SECTOR, (done + n) * SECTOR));
      done += n;
    }
  }

  /** Is any sector of this block provided by some image (false: it reads as zeros)? */
  blockHasData(blk: number): boolean {
    for (const img of this.images) {
      if (img instanceof RawImage) return blk * SECTORS_PER_BLOCK * SECTOR < img.size;
      if (img.isFixed) return blk * SECTORS_PER_BLOCK < img.sectors;
      if (blk < img.maxBat && blk * SECTORS_PER_BLOCK < img.sectors && img.blockSector(blk) !== null) return true;
    }
    return false;
  }

  private readInBlock(sector: number, out: Buffer): void {
    const n = out.length / SECTOR;
    const filled = new Uint8Array(n);
    let remaining = n;
    const blk = Math.floor(sector / SECTORS_PER_BLOCK);
    const first = sector % SECTORS_PER_BLOCK;
    for (const img of this.images) {
      if (remaining === 0) return;
      if (img instanceof RawImage || img.isFixed) {
        const size = img instanceof RawImage ? img.size : img.currSize;
        const fd = img.fd;
        forRuns(n, (i) => filled[i] === 0, (a, len) => {
          const pos = (sector + a) * SECTOR;
          if (pos >= size) return;
          const want = Math.min(len * SECTOR, size - pos);
          readFully(fd, out.subarray(a * SECTOR, a * SECTOR + want), pos);
        });
        return;
      }
      if (sector >= img.sectors || blk >= img.maxBat) continue;
      const bs = img.blockSector(blk);
      if (bs === null) continue;
      const full = img.blockFull(blk);
      const bm = full ? null : img.readBitmap(blk);
      const limit = Math.min(n, img.sectors - sector);
      forRuns(limit, (i) => filled[i] === 0 && (bm === null || testBit(bm, first + i)), (a, len) => {
        img.readAt(out.subarray(a * SECTOR, (a + len) * SECTOR), (bs + 1 + first + a) * SECTOR);
        filled.fill(1, a, a + len);
        remaining -= len;
      });
    }
  }

  close(): void {
    for (const i of this.images) i.close();
  }
}

/** Call `fn(start, length)` for each maximal run of indexes in [0, n) where `pred` holds. */
export function forRuns(n: number, pred: (i: number) => boolean, fn: (start: number, len: number) => void): void {
  let i = 0;
  while (i < n) {
    if (!pred(i)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && pred(j)) j++;
    fn(i, j - i);
    i = j;
  }
}

/** Chain depth: 1 for a base disk, +1 per differencing level; a raw parent counts one. */
export function chainDepth(path: string): number {
  const c = Chain.open(path, { allowBackupFallback: true });
  try {
    return c.images.length;
  } finally {
    c.close();
  }
}
