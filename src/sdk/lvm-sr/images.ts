// What each image format needs on an LV: how big the LV must be, how the image
// is written into it, how a child is made on top of a parent LV, and where the
// hidden flag lives (VHD footer, qcow2 header extension, `hidden` LV tag for
// raw — as xapi's LVHD keeps it). Paths are always /dev/<vg>/<lv>, so parent
// references stored in images are the ones xapi's driver stores.
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import { qcow2LvSize, rawLvSize, thickVhdLvSize, VHD_PREALLOCATED_MAX } from '../formats/lv-size.js';
import { writeQcow2Hidden } from '../formats/qcow2-header.js';
import { QCOW2_CLUSTER_SIZE } from '../formats/qcow2.js';
import { zeroOut } from '../tools/blkdiscard.js';
import * as lvm from '../tools/lvm.js';
import * as qemuImg from '../tools/qemu-img.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { HIDDEN_TAG, lvDevicePath } from './naming.js';
import { setLvParentName } from './vhd-parent.js';
import type { LvmSr } from './sr.js';

const MiB = 1024 * 1024;
const PREALLOC_MIB = VHD_PREALLOCATED_MAX / MiB;

/** Thick LV size for an image of `virtualSize` bytes (already rounded by the format's rules). */
export async function lvSizeFor(format: ImageFormat, virtualSize: number): Promise<number> {
  switch (format) {
    case 'vhd':
      return thickVhdLvSize(virtualSize);
    case 'raw':
      return rawLvSize(virtualSize);
    case 'qcow2': {
      const m = await qemuImg.measure({ targetFormat: 'qcow2', sizeBytes: virtualSize, options: { cluster_size: QCOW2_CLUSTER_SIZE } });
      return qcow2LvSize(m.fullyAllocated);
    }
  }
}

/**
 * Write an empty image of `virtualSize` into the (reachable) LV at `path`. A raw
 * LV is zeroed whole: its extents may hold a deleted VDI's data, which a new
 * disk must never show (the copy-on-write formats only expose what they write).
 */
export async function writeEmptyImage(format: ImageFormat, path: string, virtualSize: number): Promise<void> {
  try {
    if (format === 'vhd') {
      // -S: BAT preallocated for 2 TiB, as lvhdutil, so growing never moves data.
      await vhdUtil.create({ path, sizeMiB: virtualSize / MiB, maxSizeMiB: Math.max(PREALLOC_MIB, virtualSize / MiB) });
    } else if (format === 'qcow2') {
      await qemuImg.create({ format: 'qcow2', path, sizeBytes: virtualSize, clusterSize: QCOW2_CLUSTER_SIZE });
    } else {
      await zeroOut({ device: path });
    }
  } catch (e) {
    throw new SRError('VDICreate', `writing an empty ${format} image of ${virtualSize} bytes into ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Write an empty child image into `childPath`, on top of the parent LV (path /dev/<vg>/<lv>). */
export async function writeChild(
  leafFormat: ImageFormat,
  childPath: string,
  parent: { path: string; format: ImageFormat },
  virtualSize: number,
): Promise<void> {
  if (leafFormat === 'vhd') {
    await vhdUtil.snapshot({
      path: childPath,
      parent: parent.path,
      ...(parent.format === 'raw' ? { parentRaw: true } : {}),
      maxSizeMiB: Math.max(PREALLOC_MIB, virtualSize / MiB),
      linkEmptyParent: true,
    });
    setLvParentName(childPath, parent.path.replace(/^.*\//, ''));
  } else if (leafFormat === 'qcow2') {
    if (parent.format === 'vhd') throw new SRError('VDISnapshot', `a qcow2 image cannot be built on the VHD ${parent.path}`);
    // -u: the backing LV need not be opened (its size is given); the stored name is /dev/<vg>/<lv>.
    await qemuImg.create({
      format: 'qcow2',
      path: childPath,
      sizeBytes: virtualSize,
      backing: { path: parent.path, format: parent.format === 'raw' ? 'raw' : 'qcow2' },
      unsafe: true,
      clusterSize: QCOW2_CLUSTER_SIZE,
    });
  } else {
    throw new SRError('Unimplemented', 'raw images have no backing files: a raw VDI is snapshotted into a copy-on-write format');
  }
}

/**
 * Hide a base: the image's own flag (VHD footer / qcow2 extension) or, for raw,
 * the `hidden` tag; and make the LV read-only (`lvchange -p r`), as sm does.
 * The tag and the permission land in ONE lvchange.
 */
export async function hideBase(sr: LvmSr, lv: string, format: ImageFormat, lvReadOnly: boolean, tags: readonly string[], reach: (fn: (path: string) => Promise<void>) => Promise<void>): Promise<void> {
  if (format === 'vhd') await reach((path) => vhdUtil.set({ path, field: 'hidden', value: 1 }));
  else if (format === 'qcow2') await reach(async (path) => writeQcow2Hidden(path, true));
  const addTags = format === 'raw' && !tags.includes(HIDDEN_TAG) ? [HIDDEN_TAG] : [];
  if (addTags.length > 0 || !lvReadOnly) {
    await lvm.lvchange({ vg: sr.vg, name: lv, ...(lvReadOnly ? {} : { permission: 'r' as const }), ...(addTags.length ? { addTags } : {}) }, sr.scope);
  }
}

/** Hide a VDI that others are built on (vdi_delete of a visible parent): the flag only. */
export async function setHiddenFlag(sr: LvmSr, lv: string, format: ImageFormat, reach: (fn: (path: string) => Promise<void>) => Promise<void>): Promise<void> {
  if (format === 'vhd') await reach((path) => vhdUtil.set({ path, field: 'hidden', value: 1 }));
  else if (format === 'qcow2') await reach(async (path) => writeQcow2Hidden(path, true));
  else await lvm.lvchange({ vg: sr.vg, name: lv, addTags: [HIDDEN_TAG] }, sr.scope);
}

export const devicePathOf = (sr: LvmSr, lv: string): string => lvDevicePath(sr.uuid, lv);
