// One LVM SR as the handlers see it: its uuid, VG, devices, the LVM scope
// every command runs with, and how an LV's bytes are reached by a tool —
// /dev/<vg>/<lv> (activated, reference counted) where the kernel has
// device-mapper, else a loop device over the LV's extents on its PV.
import { mkdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { env } from '../env.js';
import { devicesOf, wipeStart } from '../pv-devices.js';
import { SRError } from '../errors/sr-error.js';
import type { StringMap } from '../protocol/requests.js';
import * as lvm from '../tools/lvm.js';
import { extentsOf } from './layout.js';
import * as losetup from './losetup.js';
import { checkUuid, lvDevicePath, vgNameOf } from './naming.js';
import { addHolder, holdersOf, removeHolder } from './refcount.js';

export interface LvmSr {
  uuid: string;
  vg: string;
  devices: string[];
  scope: lvm.LvmScope;
  /** Whether LVs can be activated here (kernel device-mapper). */
  dm: boolean;
}

export { devicesOf, wipeStart };

export function openLvmSr(srUuid: string, dc: StringMap): LvmSr {
  const uuid = checkUuid('sr_uuid', srUuid);
  const devices = devicesOf(dc);
  const scope: lvm.LvmScope = { devices };
  return { uuid, vg: vgNameOf(uuid), devices, scope, dm: !lvm.scopeArgs(scope).includes('--driverloaded') };
}

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Make /dev/<vg>/<lv> reach the LV. With device-mapper: `lvchange -ay`.
 * Without (this kernel has none, LVM runs --driverloaded n): a loop device
 * over the LV's extents (one contiguous range of one PV, as a linear LV is)
 * and /dev/<vg>/<lv> a symlink to it, the node LVM itself would have made.
 */
async function activate(sr: LvmSr, lv: string): Promise<void> {
  if (sr.dm) {
    await lvm.lvchange({ vg: sr.vg, name: lv, activate: true }, sr.scope);
    return;
  }
  const [rec] = await lvm.lvs({ vg: sr.vg, name: lv, segments: true }, sr.scope);
  if (rec === undefined) throw new SRError('LVMNoVolume', `LV ${sr.vg}/${lv} does not exist`);
  const pvs = await lvm.pvs({ devices: sr.devices }, sr.scope);
  const ext = extentsOf(rec, new Map(pvs.map((p) => [p.pvName, p.peStart])));
  const [piece, ...more] = ext.pieces;
  if (piece === undefined || more.length > 0 || piece.length !== rec.lvSize) {
    throw new SRError('VDIUnavailable', `LV ${sr.vg}/${lv} is not one contiguous range of a PV (${ext.pieces.length} pieces); without device-mapper only such LVs can be reached`);
  }
  const node = lvDevicePath(sr.uuid, lv);
  const loop = await losetup.attachRange({ backing: piece.pv, offset: piece.pvOffset, length: piece.length });
  try {
    mkdirSync(dirname(node), { recursive: true, mode: 0o755 });
    rmSync(node, { force: true });
    // A symlink, as LVM makes /dev/<vg>/<lv> → ../dm-N.
    symlinkSync(loop, node);
    writeFileSync(loopRecord(sr, lv), `${loop}\n`);
  } catch (e) {
    await losetup.detach(loop);
    throw e;
  }
}

/** Which loop device stands for an LV activated without device-mapper. */
function loopRecord(sr: LvmSr, lv: string): string {
  const dir = join(env.runDir(), 'lvm-sr', sr.uuid, 'loops');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, lv);
}

async function deactivate(sr: LvmSr, lv: string): Promise<void> {
  if (sr.dm) {
    await lvm.lvchange({ vg: sr.vg, name: lv, activate: false }, sr.scope);
    return;
  }
  const node = lvDevicePath(sr.uuid, lv);
  let loop: string;
  try {
    loop = readFileSync(loopRecord(sr, lv), 'utf8').trim();
  } catch {
    return; // not active
  }
  rmSync(node, { force: true });
  rmSync(loopRecord(sr, lv), { force: true });
  try {
    rmdirSync(dirname(node));
  } catch {
    /* other LVs of the VG are still active */
  }
  if (/^\/dev\/loop\d+$/.test(loop)) await losetup.detach(loop);
}

/** Activate `lv` for `holder` (only the first holder activates). */
export async function holdLv(sr: LvmSr, lv: string, holder: string): Promise<void> {
  if (holdersOf(sr.uuid, lv).length === 0) await activate(sr, lv);
  addHolder(sr.uuid, lv, holder);
}

/** Drop `holder`; the LV is deactivated when nobody holds it any more. */
export async function releaseLv(sr: LvmSr, lv: string, holder: string): Promise<void> {
  if (removeHolder(sr.uuid, lv, holder)) await deactivate(sr, lv);
}

/**
 * Run `fn` with /dev/<vg>/<lv> usable by a tool (vhd-util, qemu-img): the LV
 * is activated for the call unless someone already holds it.
 */
export async function withLvPath<T>(sr: LvmSr, lv: string, fn: (path: string) => Promise<T>): Promise<T> {
  const held = holdersOf(sr.uuid, lv).length > 0;
  if (!held) await activate(sr, lv);
  try {
    return await fn(lvDevicePath(sr.uuid, lv));
  } finally {
    if (!held) await deactivate(sr, lv);
  }
}

/** Several LVs at once (snapshot: parent and children). */
export async function withLvPaths<T>(sr: LvmSr, lvs: readonly string[], fn: () => Promise<T>): Promise<T> {
  const [first, ...rest] = lvs;
  if (first === undefined) return fn();
  return withLvPath(sr, first, () => withLvPaths(sr, rest, fn));
}
