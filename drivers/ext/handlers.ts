// The `ext` SR type, laid out exactly as xapi's EXTSR (spec/sm-spec.md §5.3):
// VG `XSLocalEXT-<sr_uuid>` over device-config:device (comma-separated), one LV
// `<sr_uuid>` using all the space, ext4 on it, mounted at
// <SM_SR_MOUNT_ROOT>/<sr_uuid>. Only how that file system comes to exist, is
// mounted and goes away lives here; the VDI side is the shared file-SR core.
import { mkdirSync, rmdirSync } from 'node:fs';
import { devicesOf, refuseRootDevices, wipeStart } from '../../src/sdk/pv-devices.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { releaseMountPoint } from '../../src/sdk/file-sr/mount-point.js';
import { fileSrHandlers, type FileSrType, type SrCall } from '../../src/sdk/file-sr/handlers.js';
import { srDirFor } from '../../src/sdk/file-sr/paths.js';
import { escapeXml } from '../../src/sdk/protocol/xmlrpc.js';
import { fsck } from '../../src/sdk/tools/fsck.js';
import * as lvm from '../../src/sdk/tools/lvm.js';
import { mkfsExt4 } from '../../src/sdk/tools/mkfs.js';
import { isMountPoint, mount } from '../../src/sdk/tools/mount.js';
import { ToolError } from '../../src/sdk/tools/run.js';
import { DRIVER_INFO } from './info.js';

/** sm's constants.EXT_PREFIX. */
export const EXT_VG_PREFIX = 'XSLocalEXT-';

export const vgNameOf = (srUuid: string): string => `${EXT_VG_PREFIX}${srUuid}`;
/** The LV's device node: /dev/XSLocalEXT-<sr>/<sr>. */
export const lvDeviceOf = (srUuid: string): string => `/dev/${vgNameOf(srUuid)}/${srUuid}`;

export { devicesOf };

const scopeOf = (devices: readonly string[]): lvm.LvmScope => ({ devices });

function toolDetail(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The PVs of these devices that LVM sees, with the VG they belong to ('' = none). */
async function pvsOf(devices: readonly string[]): Promise<lvm.PvRecord[]> {
  return lvm.pvs({ devices }, scopeOf(devices));
}

/**
 * LV size that uses all free space. Striped over N PVs, each stripe can only be as
 * large as the smallest PV's free space (as `-l 100%FREE` would decide).
 */
export function fullLvSize(pvs: readonly lvm.PvRecord[], vgFree: number, extentSize: number): number {
  if (pvs.length <= 1) return vgFree;
  const perPv = Math.min(...pvs.map((p) => p.pvFree));
  return Math.floor(perPv / extentSize) * extentSize * pvs.length;
}

async function removeVg(srUuid: string, devices: readonly string[]): Promise<void> {
  const scope = scopeOf(devices);
  await lvm.vgremove({ vg: vgNameOf(srUuid), force: true }, scope);
  await lvm.pvremove({ devices }, scope);
}

async function mkfsOrThrow(srUuid: string, devices: readonly string[]): Promise<void> {
  const scope = scopeOf(devices);
  const vg = vgNameOf(srUuid);
  let vgRec: lvm.VgRecord | undefined;
  try {
    vgRec = (await lvm.vgs({ vg }, scope))[0];
  } catch (e) {
    throw new SRError('LVMGroupCreate', `reading VG ${vg} after creating it: ${toolDetail(e)}`, { cause: e });
  }
  if (vgRec === undefined) throw new SRError('LVMGroupCreate', `VG ${vg} was created but LVM does not report it`);
  const size = fullLvSize(await pvsOf(devices), vgRec.vgFree, vgRec.extentSize);
  if (size < vgRec.extentSize) throw new SRError('SRNoSpace', `VG ${vg} has no free space for the SR's volume (${vgRec.vgFree} bytes free)`);
  try {
    await lvm.lvcreate({ vg, name: srUuid, sizeBytes: size, ...(devices.length > 1 ? { stripes: devices.length } : {}) }, scope);
  } catch (e) {
    throw new SRError('LVMCreate', `creating LV ${vg}/${srUuid} of ${size} bytes: ${toolDetail(e)}`, { cause: e });
  }
  try {
    await lvm.lvchange({ vg, name: srUuid, activate: true }, scope);
    await mkfsExt4({ device: lvDeviceOf(srUuid) });
  } catch (e) {
    throw new SRError('LVMFilesystem', `making ext4 on ${lvDeviceOf(srUuid)}: ${toolDetail(e)}`, { cause: e });
  }
}

async function deactivate(srUuid: string, devices: readonly string[]): Promise<void> {
  await lvm.lvchange({ vg: vgNameOf(srUuid), name: srUuid, activate: false }, scopeOf(devices));
}

export const EXT_SR: FileSrType = {
  srType: 'ext',
  storageType: 'ext',
  info: DRIVER_INFO,

  async create(req) {
    const devices = devicesOf(req.device_config);
    const srDir = srDirFor(req.sr_uuid);
    if (await isMountPoint(srDir)) throw new SRError('SRExists', `SR ${req.sr_uuid} is already mounted at ${srDir}`);
    refuseRootDevices(devices);
    for (const pv of await pvsOf(devices).catch(() => [])) {
      if (pv.vgName === vgNameOf(req.sr_uuid)) throw new SRError('SRExists', `device ${pv.pvName} already holds VG ${pv.vgName} of SR ${req.sr_uuid}`);
    }
    for (const d of devices) wipeStart(d);
    const scope = scopeOf(devices);
    try {
      await lvm.pvcreate({ devices }, scope);
      await lvm.vgcreate({ vg: vgNameOf(req.sr_uuid), devices }, scope);
    } catch (e) {
      await lvm.pvremove({ devices }, scope).catch(() => undefined);
      throw new SRError('LVMGroupCreate', `VG ${vgNameOf(req.sr_uuid)} on ${devices.join(', ')}: ${toolDetail(e)}`, { cause: e });
    }
    try {
      await mkfsOrThrow(req.sr_uuid, devices);
      // Left inactive so that create holds nothing open; sr_attach activates it.
      await deactivate(req.sr_uuid, devices);
    } catch (e) {
      // Nothing of a failed create may stay behind on the devices.
      await removeVg(req.sr_uuid, devices).catch(() => undefined);
      if (e instanceof SRError) throw e;
      throw new SRError('LVMCreate', toolDetail(e), { cause: e });
    }
  },

  async attach(req: SrCall, srDir: string) {
    const devices = devicesOf(req.device_config);
    const dev = lvDeviceOf(req.sr_uuid);
    try {
      await lvm.lvchange({ vg: vgNameOf(req.sr_uuid), name: req.sr_uuid, activate: true }, scopeOf(devices));
    } catch (e) {
      throw new SRError('LVMMount', `activating ${vgNameOf(req.sr_uuid)}/${req.sr_uuid} on ${devices.join(', ')}: ${toolDetail(e)}`, { cause: e });
    }
    try {
      await fsck({ device: dev });
    } catch (e) {
      await deactivate(req.sr_uuid, devices).catch(() => undefined);
      throw new SRError('LVMMount', `fsck of ${dev} failed: ${toolDetail(e)}`, { cause: e });
    }
    mkdirSync(srDir, { recursive: true, mode: 0o755 });
    try {
      await mount({ source: dev, target: srDir });
    } catch (e) {
      try {
        rmdirSync(srDir);
      } catch {
        /* keep the original error */
      }
      await deactivate(req.sr_uuid, devices).catch(() => undefined);
      throw new SRError('LVMMount', `mounting ${dev} at ${srDir}: ${toolDetail(e)}`, { cause: e });
    }
  },

  async detach(req: SrCall, srDir: string) {
    const devices = devicesOf(req.device_config);
    await releaseMountPoint(srDir);
    try {
      await deactivate(req.sr_uuid, devices);
    } catch (e) {
      throw new SRError('LVMUnMount', `deactivating ${vgNameOf(req.sr_uuid)}/${req.sr_uuid}: ${toolDetail(e)}`, { cause: e });
    }
  },

  async destroy(req) {
    const devices = devicesOf(req.device_config);
    const vg = vgNameOf(req.sr_uuid);
    const pvs = await pvsOf(devices).catch((e: unknown) => {
      throw new SRError('PVSfailed', `pvs on ${devices.join(', ')}: ${toolDetail(e)}`, { cause: e });
    });
    if (!pvs.some((p) => p.vgName === vg)) throw new SRError('VolNotFound', `no device of ${devices.join(', ')} holds VG ${vg}`);
    const scope = scopeOf(devices);
    try {
      await lvm.lvremove({ vg, name: req.sr_uuid }, scope);
      await lvm.vgremove({ vg }, scope);
      await lvm.pvremove({ devices }, scope);
    } catch (e) {
      throw new SRError('LVMDelete', `removing ${vg} from ${devices.join(', ')}: ${toolDetail(e)}`, { cause: e });
    }
  },

  async probe(req) {
    const devices = devicesOf(req.device_config);
    // One pvs per device, as sm: a device that is not a PV holds no SR (not an error).
    const pvs: lvm.PvRecord[] = [];
    for (const d of devices) {
      try {
        pvs.push(...(await pvsOf([d])));
      } catch (e) {
        if (e instanceof ToolError && /Failed to find physical volume/.test(e.stderr)) continue;
        throw new SRError('PVSfailed', `pvs on ${d}: ${toolDetail(e)}`, { cause: e });
      }
    }
    const byVg = new Map<string, string[]>();
    for (const p of pvs) {
      if (!p.vgName.startsWith(EXT_VG_PREFIX)) continue;
      byVg.set(p.vgName, [...(byVg.get(p.vgName) ?? []), p.pvName]);
    }
    const lines = ['<?xml version="1.0" ?>', '<SRlist>'];
    for (const [vg, devs] of byVg) {
      const rec = (await lvm.vgs({ vg }, scopeOf(devices)))[0];
      lines.push(
        '\t<SR>',
        `\t\t<UUID>${escapeXml(vg.slice(EXT_VG_PREFIX.length))}</UUID>`,
        `\t\t<Devlist>${escapeXml(devs.join(','))}</Devlist>`,
        `\t\t<size>${rec?.vgSize ?? 0}</size>`,
        '\t</SR>',
      );
    }
    if (byVg.size === 0) return '<?xml version="1.0" ?>\n<SRlist/>\n';
    lines.push('</SRlist>', '');
    return lines.join('\n');
  },
};

export const handlers = fileSrHandlers(EXT_SR);
