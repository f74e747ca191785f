// Which VDIs vdi_detach must deflate on this host: decided at vdi_attach (RW
// attach of a VHD/qcow2 VDI on a thin SR, or of a snapshot on a thick SR, as
// LVHD's detach decides), kept as one empty file per VDI under the run
// directory, so a detach that needs no deflate runs no LVM command at all.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { env } from '../env.js';
import { checkUuid } from './naming.js';

function markPath(srUuid: string, vdiUuid: string): string {
  return join(env.runDir(), 'lvm-sr', checkUuid('sr_uuid', srUuid), 'deflate-on-detach', checkUuid('vdi_uuid', vdiUuid));
}

export function markDeflate(srUuid: string, vdiUuid: string): void {
  const p = markPath(srUuid, vdiUuid);
  mkdirSync(join(p, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(p, '');
}

export const deflateMarked = (srUuid: string, vdiUuid: string): boolean => existsSync(markPath(srUuid, vdiUuid));

export function clearDeflateMark(srUuid: string, vdiUuid: string): void {
  rmSync(markPath(srUuid, vdiUuid), { force: true });
}
