// Metadata operations on one VHD: hidden flag, marker, repair, re-parenting,
// physical size, kill data, and coalescing a child into its parent.
import { fsyncSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { EINVAL, ENOSYS, VhdError } from './errors.js';
import {
  BAT_UNUSED,
  BLOCK_SIZE,
  LOCATOR_SPACE,
  SECTOR,
  SECTORS_PER_BLOCK,
  VHD_EPOCH_OFFSET,
  encodeParentName,
  isZero,
  newUuid,
} from './format.js';
import { RawImage, forRuns, parentIsRaw } from './chain.js';
import { canonical, locatorPayloads, resolveParent } from './locators.js';
import { VhdFile, testBit, writeFully } from './vhd-file.js';

function withVhd<T>(path: string, fn: (v: VhdFile) => T, opts: Parameters<typeof VhdFile.open>[1] = { write: true, allowBackupFallback: true }): T {
  const v = VhdFile.open(path, opts);
  try {
    return fn(v);
  } finally {
    v.close();
  }
}

/**
 * `set -f hidden`: rewrite both footers. Quirk matched from blktap: the footer is
 * written at the computed end of data and the file is truncated there (undoing
 * an earlier `modify -s`).
 */
export function setHidden(path: string, value: number): void {
  withVhd(path, (v) => {
    v.footer.hidden = value;
    if (!v.isFixed) v.bat(); // validates the BAT before anything is written
    v.writeFooters({ truncate: true });
  });
}

/** `set -f marker`: the batmap header's marker byte (file size unchanged). */
export function setMarker(path: string, value: number): void {
  withVhd(path, (v) => {
    const bh = v.loadBatmap();
    if (!bh) throw new VhdError(ENOSYS, `${path} has no batmap (marker in xattrs is not supported by this implementation)`);
    bh.marker = value;
    v.writeBatmapHeader();
  });
}

export function getMarker(v: VhdFile): number {
  return v.hasBatmap ? (v.loadBatmap()?.marker ?? 0) : 0;
}

/** `repair [-b]`: take the primary footer (or the copy), give it a UUID if null, rewrite both at the end. */
export function repair(path: string, useBackup: boolean): void {
  withVhd(
    path,
    (v) => {
      if (isZero(v.footer.uuid)) v.footer.uuid = newUuid();
      v.writeFooters({ truncate: true });
    },
    { write: true, allowBackupFallback: true, backupFooter: useBackup },
  );
}

/** `modify -p`: re-point a differencing disk, rewriting the existing locator slots in place. */
export function setParent(path: string, parentPath: string, raw: boolean): void {
  withVhd(path, (v) => {
    if (!v.isDiff || !v.header) throw new VhdError(EINVAL, `${path} is not a differencing disk`);
    const h = v.header;
    let uuid: Buffer = Buffer.alloc(16);
    if (!raw) {
      const p = VhdFile.open(parentPath, { allowBackupFallback: true });
      uuid = p.footer.uuid;
      p.close();
    } else {
      RawImage.open(parentPath).close();
    }
    const payloads = locatorPayloads(path, parentPath);
    const slots = h.locators.map((l, i) => ({ l, i })).filter(({ l }) => l.code !== 0);
    for (const { l } of slots) {
      const p = payloads.find((x) => x.code === l.code);
      const space = l.dataSpace < 512 ? l.dataSpace * SECTOR : l.dataSpace;
      if (p && p.data.length > space) throw new VhdError(EINVAL, `parent path too long for locator space (${space} bytes)`);
    }
    for (const { l } of slots) {
      const p = payloads.find((x) => x.code === l.code);
      if (!p) continue;
      const space = Math.max(l.dataSpace < 512 ? l.dataSpace * SECTOR : l.dataSpace, LOCATOR_SPACE);
      const area = Buffer.alloc(space);
      p.data.copy(area);
      v.writeAt(area, Number(l.dataOffset));
      l.dataLen = p.data.length;
    }
    h.prtUuid = uuid;
    h.prtTimestamp = Math.max(0, Math.floor(statSync(parentPath).mtimeMs / 1000) - VHD_EPOCH_OFFSET);
    h.prtName = encodeParentName(basename(canonical(parentPath)));
    v.writeHeader();
  });
}

/** `modify -s BYTES`: write the footer at BYTES-512 without truncating (VHDs in fixed-size LVs). */
export function setPhysicalSize(path: string, bytes: number): void {
  withVhd(path, (v) => {
    if (v.isFixed) throw new VhdError(EINVAL, 'cannot set the physical size of a fixed disk');
    if (bytes % SECTOR !== 0 || bytes < v.physicalSize()) {
      throw new VhdError(EINVAL, `physical size ${bytes} must be sector aligned and at least ${v.physicalSize()}`);
    }
    v.writeAt(v.footerBytes(), bytes - SECTOR);
    v.writeAt(v.footerBytes(), 0);
  });
}

/** `modify -z`: unallocate every block and truncate the file after the metadata. */
export function killData(path: string): void {
  withVhd(path, (v) => {
    if (v.isFixed) throw new VhdError(EINVAL, 'cannot kill data of a fixed disk');
    const bat = v.bat();
    bat.fill(BAT_UNUSED);
    const map = v.batmap();
    // BAT first, then batmap, then footers at the new end
    v.writeAt(v.batOnDisk(), Number(v.header!.tableOffset));
    if (map) {
      map.fill(0);
      v.writeAt(map, Number(v.batmapHeader!.offset));
      v.writeBatmapHeader();
    }
    v.invalidate();
    v.writeFooters({ truncate: true });
  });
}

export interface CoalesceOptions {
  sparse?: boolean;
  progress?: (fraction: number) => void;
}

/**
 * Merge a differencing disk into its immediate parent: every sector whose bitmap
 * bit is set (whole blocks when the batmap says full) is written into the parent
 * through the normal write path. The child is not modified. Returns sectors copied.
 */
export function coalesce(childPath: string, opts: CoalesceOptions = {}): number {
  const child = VhdFile.open(childPath, { allowBackupFallback: true });
  try {
    if (!child.isDiff) throw new VhdError(EINVAL, 'coalescing of non-differencing disks is not supported');
    const parentPath = resolveParent(child);
    const raw = parentIsRaw(child);
    const parent: VhdFile | RawImage = raw ? RawImage.open(parentPath, true) : VhdFile.open(parentPath, { write: true, allowBackupFallback: true });
    try {
      if (!(parent instanceof RawImage)) parent.bat();
      const parentSectors = parent instanceof RawImage ? Math.floor(parent.size / SECTOR) : parent.sectors;
      const buf = Buffer.alloc(BLOCK_SIZE);
      let copied = 0;
      const blocks = child.blocksInSize;
      const bat = child.bat();
      const put = (sector: number, data: Buffer) => {
        if (sector + data.length / SECTOR > parentSectors) {
          throw new VhdError(EINVAL, `child data at sector ${sector} lies beyond the parent's size`);
        }
        if (parent instanceof RawImage) writeFully(parent.fd, data, sector * SECTOR);
        else parent.writeSectors(sector, data, { sparse: !!opts.sparse });
      };
      for (let b = 0; b < blocks; b++) {
        opts.progress?.(b / blocks);
        const bs = bat[b]!;
        if (bs === BAT_UNUSED) continue;
        const first = b * SECTORS_PER_BLOCK;
        const n = Math.min(SECTORS_PER_BLOCK, child.sectors - first);
        if (child.blockFull(b)) {
          const data = buf.subarray(0, n * SECTOR);
          child.readAt(data, (bs + 1) * SECTOR);
          put(first, data);
          copied += n;
          continue;
        }
        const bm = Buffer.from(child.readBitmap(b));
        forRuns(n, (i) => testBit(bm, i), (a, len) => {
          const data = buf.subarray(0, len * SECTOR);
          child.readAt(data, (bs + 1 + a) * SECTOR);
          put(first + a, data);
          copied += len;
        });
      }
      opts.progress?.(1);
      return copied;
    } finally {
      if (parent instanceof RawImage) fsyncSync(parent.fd);
      parent.close();
    }
  } finally {
    child.close();
  }
}
