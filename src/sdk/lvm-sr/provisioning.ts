// Thick and thin provisioning of VDI LVs, as xapi's LVHD does it (spec §5.5):
//   * the SR's mode is `allocation` = thick (default) | thin, chosen at sr_create
//     (SR sm-config, else device-config) and kept in MGT and the SR's sm-config;
//   * thin: a new VHD/qcow2 leaf gets an LV that holds its metadata only (VHD:
//     8 MiB, the 2 TiB BAT preallocation; qcow2: `qemu-img measure`'s `required`);
//   * inflate (RW vdi_attach, both modes, when the LV is below the thick size):
//     lvextend to the thick size, then the VHD footer copied to the new end;
//   * deflate (vdi_detach on thin SRs, or of a snapshot on thick SRs; and the
//     hidden base of every snapshot/clone): the LV shrunk to what the image
//     occupies — VHD: `vhd-util query -s` (end of the last block + footer),
//     footer moved there with `vhd-util modify -s`; qcow2: `qemu-img check`'s
//     image-end-offset — in whole 4 MiB extents, then lvreduce;
//   * vdi_resize on a thin SR keeps the LV deflated (VHD: as it is; qcow2: room
//     for a grown L1 table), so virtual allocation may exceed the VG; the next
//     RW attach inflates to the new thick size or fails with LVMProvisionAttach.
// Raw LVs are always full size.
//
// Crash safety: each inflate/deflate is journalled in MGT as {from, to}. The
// smaller of the two sizes always holds the whole image (inflate: the size it
// had; deflate: measured before the journal, and nothing writes meanwhile), so
// recovery shrinks the LV to min(from, to) with the VHD footer there (a deflate
// copies it from offset 0; an inflate never overwrote the one at from-512):
// an interrupted inflate is undone (as LVHD undoes `inflate_*` journals), an
// interrupted deflate is finished.
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import { deflatedVhdLvSize, emptyVhdLvSize, LVM_SIZE_INCREMENT, roundUp } from '../formats/lv-size.js';
import { QCOW2_CLUSTER_SIZE } from '../formats/qcow2.js';
import type { StringMap } from '../protocol/requests.js';
import * as lvm from '../tools/lvm.js';
import * as qemuImg from '../tools/qemu-img.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { fistPoint } from './fist.js';
import { lvSizeFor } from './images.js';
import type { SrMetadata } from './metadata.js';
import type { ProvisionJournal } from './mgt.js';
import { lvDevicePath, lvNameOf } from './naming.js';
import { withLvPath, withLvPaths, type LvmSr } from './sr.js';
import { moveVhdFooterToEnd } from './vhd-parent.js';

export const ALLOCATIONS = ['thick', 'thin'] as const;
export type Allocation = (typeof ALLOCATIONS)[number];
export const DEFAULT_ALLOCATION: Allocation = 'thick';
/** The SR sm-config / device-config key xapi's LVHDSR reads. */
export const ALLOCATION_KEY = 'allocation';

export function parseAllocation(value: string, where: string): Allocation {
  if ((ALLOCATIONS as readonly string[]).includes(value)) return value as Allocation;
  throw new SRError('InvalidArg', `${where}=${JSON.stringify(value)} is not a provisioning mode; allowed: ${ALLOCATIONS.join(', ')}`);
}

/**
 * sr_create: SR sm-config:allocation overrides device-config:allocation; neither → thick.
 * Both are checked when given, so a typo is refused before anything is written.
 */
export function allocationForCreate(deviceConfig: StringMap, srSmConfig: Record<string, unknown>): Allocation {
  const dc = deviceConfig[ALLOCATION_KEY];
  const fromDc = dc !== undefined && dc !== '' ? parseAllocation(dc, `device-config:${ALLOCATION_KEY}`) : null;
  const sm = srSmConfig[ALLOCATION_KEY];
  const fromSm = typeof sm === 'string' && sm !== '' ? parseAllocation(sm, `sm-config:${ALLOCATION_KEY}`) : null;
  return fromSm ?? fromDc ?? DEFAULT_ALLOCATION;
}

/** The SR's mode as stored in MGT (an SR whose MGT we cannot read is thick, xapi's default). */
export const allocationOf = (meta: SrMetadata): Allocation => meta.content.sr.allocation;

/** LV size of an empty image's metadata only (thin start). Raw has no such thing: full size. */
export async function thinLvSize(format: ImageFormat, virtualSize: number): Promise<number> {
  switch (format) {
    case 'vhd':
      return emptyVhdLvSize();
    case 'qcow2': {
      const m = await qemuImg.measure({ targetFormat: 'qcow2', sizeBytes: virtualSize, options: { cluster_size: QCOW2_CLUSTER_SIZE } });
      return roundUp(LVM_SIZE_INCREMENT, m.required);
    }
    case 'raw':
      return lvSizeFor('raw', virtualSize);
  }
}

/** LV size for a new empty image on an SR in `allocation` mode. */
export async function newLvSize(format: ImageFormat, virtualSize: number, allocation: Allocation): Promise<number> {
  return allocation === 'thin' ? thinLvSize(format, virtualSize) : lvSizeFor(format, virtualSize);
}

/** The LV a provisioning step works on. */
export interface ProvisionTarget {
  uuid: string;
  format: ImageFormat;
  lvName: string;
  lvSize: number;
}

/** `chainLvs` (what opening the image needs, inventory.ts lvsToOpen) with the target's own LV. */
const withTarget = (t: ProvisionTarget, chainLvs: readonly string[]): readonly string[] => (chainLvs.includes(t.lvName) ? chainLvs : [t.lvName, ...chainLvs]);

/** Copy the footer (its copy at offset 0 of a dynamic/differencing VHD) to `offset`. */
function writeVhdFooterAt(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const footer = Buffer.alloc(512);
    if (readSync(fd, footer, 0, 512, 0) !== 512 || footer.toString('latin1', 0, 8) !== 'conectix') throw new Error(`${path}: no VHD footer copy at offset 0`);
    writeSync(fd, footer, 0, 512, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function lvSizeNow(sr: LvmSr, lvName: string): Promise<number | null> {
  const rec = (await lvm.lvs({ vg: sr.vg }, sr.scope)).find((l) => l.lvName === lvName);
  return rec === undefined ? null : rec.lvSize;
}

/**
 * Finish an interrupted inflate/deflate (or undo a failed one): the LV back to
 * min(from, to), the VHD footer at its end first. Idempotent.
 */
export async function recoverProvision(sr: LvmSr, meta: SrMetadata, j: ProvisionJournal): Promise<string> {
  const lvName = lvNameOf(j.vdi, j.format);
  const what = j.toLvSize > j.fromLvSize ? 'inflate' : 'deflate';
  const target = Math.min(j.fromLvSize, j.toLvSize);
  const size = await lvSizeNow(sr, lvName);
  if (size === null) {
    meta.dropJournal(j);
    return `${what} of ${j.vdi}: LV ${lvName} is gone; journal dropped`;
  }
  if (size > target) {
    // An inflate never wrote at from-512: the footer there is intact and the LV need not be
    // reached (an extension that is not contiguous cannot be, without device-mapper).
    if (j.format === 'vhd' && what === 'deflate') await withLvPath(sr, lvName, async (path) => writeVhdFooterAt(path, target - 512));
    await lvm.lvresize({ vg: sr.vg, name: lvName, sizeBytes: target, allowShrink: true }, sr.scope);
  }
  meta.dropJournal(j);
  return `${what} of ${j.vdi} ${what === 'inflate' ? 'rolled back' : 'finished'}: LV ${lvName} is ${target} bytes`;
}

/**
 * Grow a VHD/qcow2 LV to `toLvSize` (the thick size): lvextend, then the VHD
 * footer to the new end. `freeBytes` (the VG's free space) turns a short VG into
 * LVMProvisionAttach, as LVHD reports an over-provisioned SR.
 */
export async function inflate(sr: LvmSr, meta: SrMetadata, t: ProvisionTarget, toLvSize: number, freeBytes?: number): Promise<void> {
  if (t.format === 'raw' || toLvSize <= t.lvSize) return;
  if (freeBytes !== undefined && freeBytes < toLvSize - t.lvSize) {
    throw new SRError('LVMProvisionAttach', `VDI ${t.uuid}: inflating LV ${t.lvName} from ${t.lvSize} to ${toLvSize} bytes needs ${toLvSize - t.lvSize} bytes; ${sr.vg} has ${freeBytes} free`);
  }
  const j: ProvisionJournal = { op: 'provision', vdi: t.uuid, format: t.format, fromLvSize: t.lvSize, toLvSize };
  meta.putJournal(j);
  fistPoint('lvm-inflate-journal');
  try {
    await lvm.lvextend({ vg: sr.vg, name: t.lvName, sizeBytes: toLvSize }, sr.scope);
    fistPoint('lvm-inflate-extend');
    if (t.format === 'vhd') await withLvPath(sr, t.lvName, async (path) => moveVhdFooterToEnd(path));
    fistPoint('lvm-inflate-footer');
  } catch (e) {
    await recoverProvision(sr, meta, j).catch(() => undefined);
    if (e instanceof SRError) throw e;
    throw new SRError('LVMProvisionAttach', `VDI ${t.uuid}: inflating LV ${t.lvName} from ${t.lvSize} to ${toLvSize} bytes: ${(e as Error).message}`, { cause: e });
  }
  meta.dropJournal(j);
}

async function qcow2ImageEnd(path: string): Promise<number> {
  const c = await qemuImg.check({ path, format: 'qcow2' });
  if (c.imageEndOffset === undefined) throw new Error(`qemu-img check of ${path} reported no image-end-offset`);
  return c.imageEndOffset;
}

/** The LV size the image at `path` needs as it stands: its physical utilisation in whole extents. */
export async function usedLvSize(format: ImageFormat, path: string): Promise<number> {
  if (format === 'vhd') {
    const q = await vhdUtil.query({ path, fields: ['physicalSize'] });
    return deflatedVhdLvSize(q.physicalSize!);
  }
  return roundUp(LVM_SIZE_INCREMENT, await qcow2ImageEnd(path));
}

/**
 * What `qemu-img resize` of a qcow2 to `virtualSize` may append at the image's
 * end: a new L1 table (qemu writes the grown table to fresh clusters, then frees
 * the old one) plus a refcount block and a grown refcount table for them.
 */
export function qcow2GrowRoom(virtualSize: number): number {
  const C = QCOW2_CLUSTER_SIZE;
  const l1Bytes = Math.ceil(virtualSize / (C * (C / 8))) * 8;
  return roundUp(C, l1Bytes) + 3 * C;
}

/**
 * LV size of a detached VDI grown to `virtualSize`. Thick SRs (and raw): the
 * thick size. Thin SRs keep the LV deflated, as LVHD does; the next RW attach
 * inflates it to the new thick size. A VHD needs no room (its BAT is
 * preallocated for 2 TiB: only header and footer change); a qcow2 needs room
 * past its image-end-offset for a bigger L1 table. `chainLvs` as for deflate.
 */
export async function resizedLvSize(sr: LvmSr, t: ProvisionTarget, virtualSize: number, allocation: Allocation, chainLvs: readonly string[] = [t.lvName]): Promise<number> {
  if (allocation === 'thick' || t.format === 'raw') return lvSizeFor(t.format, virtualSize);
  if (t.format === 'vhd') return t.lvSize;
  const end = await withLvPaths(sr, withTarget(t, chainLvs), () => qcow2ImageEnd(lvDevicePath(sr.uuid, t.lvName)));
  return Math.max(t.lvSize, roundUp(LVM_SIZE_INCREMENT, end + qcow2GrowRoom(virtualSize)));
}

/**
 * Shrink a VHD/qcow2 LV to what its image occupies. `chainLvs` are the LVs to
 * hold while measuring (a qcow2 is opened with its backing chain). The LV must
 * not be in use. Returns the LV size afterwards.
 */
export async function deflate(sr: LvmSr, meta: SrMetadata, t: ProvisionTarget, chainLvs: readonly string[] = [t.lvName]): Promise<number> {
  if (t.format === 'raw') return t.lvSize;
  // Set inside the callback once the journal is written (a holder: TS does not track closure writes).
  const st: { j: ProvisionJournal | null } = { j: null };
  const lvs = withTarget(t, chainLvs);
  try {
    await withLvPaths(sr, lvs, async () => {
      const path = lvDevicePath(sr.uuid, t.lvName);
      const to = await usedLvSize(t.format, path);
      if (to >= t.lvSize) return;
      st.j = { op: 'provision', vdi: t.uuid, format: t.format, fromLvSize: t.lvSize, toLvSize: to };
      meta.putJournal(st.j);
      fistPoint('lvm-deflate-journal');
      if (t.format === 'vhd') await vhdUtil.modify({ path, physicalSize: to });
      fistPoint('lvm-deflate-footer');
    });
    const done = st.j;
    if (done === null) return t.lvSize;
    await lvm.lvresize({ vg: sr.vg, name: t.lvName, sizeBytes: done.toLvSize, allowShrink: true }, sr.scope);
    fistPoint('lvm-deflate-reduce');
    meta.dropJournal(done);
    return done.toLvSize;
  } catch (e) {
    if (st.j !== null) await recoverProvision(sr, meta, st.j).catch(() => undefined);
    throw e instanceof SRError ? e : new SRError('LVMResize', `VDI ${t.uuid}: deflating LV ${t.lvName}: ${(e as Error).message}`, { cause: e });
  }
}

/** Shrink back to `toLvSize` (an inflate whose attach then failed), journalled like the rest. */
export async function shrinkBack(sr: LvmSr, meta: SrMetadata, t: ProvisionTarget, toLvSize: number): Promise<void> {
  if (toLvSize >= t.lvSize) return;
  const j: ProvisionJournal = { op: 'provision', vdi: t.uuid, format: t.format, fromLvSize: t.lvSize, toLvSize };
  meta.putJournal(j);
  await recoverProvision(sr, meta, j);
}
