// Names on an LVM SR, exactly as xapi's LVHDSR lays them out (spec §5.5), so an
// SR made by either driver attaches with the other:
//   VG   VG_XenStorage-<sr_uuid>
//   LV   VHD-<vdi_uuid> (VHD inside the LV), LV-<vdi_uuid> (raw, xapi's "aio"),
//        QCOW2-<vdi_uuid> (qcow2: XCP-ng's prefix, our choice too), MGT (SR metadata)
//   tags `hidden` (raw LVs: the hidden flag; VHD/qcow2 keep it in the image header)
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';

export const VG_PREFIX = 'VG_XenStorage-';
export const MGT_LV = 'MGT';
/** xapi's MGT volume is 4 MiB. */
export const MGT_SIZE = 4 * 1024 * 1024;
export const HIDDEN_TAG = 'hidden';

export const LV_PREFIX: Readonly<Record<ImageFormat, string>> = Object.freeze({ vhd: 'VHD-', raw: 'LV-', qcow2: 'QCOW2-' });
/** xapi's sm-config:vdi_type per format (raw is "aio" on LVHD). */
export const VDI_TYPE: Readonly<Record<ImageFormat, string>> = Object.freeze({ vhd: 'vhd', raw: 'aio', qcow2: 'qcow2' });

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A request's uuid, lower-cased, or BadRequest naming the member and the value. */
export function checkUuid(member: string, value: string): string {
  const v = value.toLowerCase();
  if (!UUID_RE.test(v)) throw new SRError('BadRequest', `${member} ${JSON.stringify(value)} is not a UUID (8-4-4-4-12 hex digits); on an lvm SR the VDI location is its uuid`);
  return v;
}

export const vgNameOf = (srUuid: string): string => `${VG_PREFIX}${srUuid}`;
export const lvNameOf = (uuid: string, format: ImageFormat): string => `${LV_PREFIX[format]}${uuid}`;
/** The LV's device node when active: /dev/<vg>/<lv>. */
export const lvDevicePath = (srUuid: string, lv: string): string => `/dev/${vgNameOf(srUuid)}/${lv}`;

/** The VDI an LV holds, or null for MGT, journals and anything else that is not a VDI. */
export function parseLvName(name: string): { uuid: string; format: ImageFormat } | null {
  for (const format of ['vhd', 'qcow2', 'raw'] as const) {
    const p = LV_PREFIX[format];
    if (!name.startsWith(p)) continue;
    const uuid = name.slice(p.length);
    if (UUID_RE.test(uuid)) return { uuid, format };
  }
  return null;
}

/** The SR uuid of a VG of ours, or null. */
export function srUuidOfVg(vg: string): string | null {
  if (!vg.startsWith(VG_PREFIX)) return null;
  const u = vg.slice(VG_PREFIX.length);
  return UUID_RE.test(u) ? u : null;
}
