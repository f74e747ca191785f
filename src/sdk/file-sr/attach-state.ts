// Which VDIs of a file SR are attached on this host: one marker file per VDI
// under <SM_RUN_DIR>/file-sr/<sr_uuid>/attached/<vdi_uuid> (runtime state, gone
// after a reboot like tapdisks are). GC never rewrites an attached VDI.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { env } from '../env.js';
import { checkSrUuid, checkVdiName } from './paths.js';

function dirOf(srUuid: string): string {
  return join(env.runDir(), 'file-sr', checkSrUuid(srUuid), 'attached');
}

export function markAttached(srUuid: string, vdiUuid: string, writable: boolean): void {
  const dir = dirOf(srUuid);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, checkVdiName('vdi_uuid', vdiUuid)), writable ? 'RW\n' : 'RO\n');
}

export function markDetached(srUuid: string, vdiUuid: string): void {
  rmSync(join(dirOf(srUuid), checkVdiName('vdi_uuid', vdiUuid)), { force: true });
}

export function isAttached(srUuid: string, vdiUuid: string): boolean {
  return existsSync(join(dirOf(srUuid), vdiUuid.toLowerCase()));
}

export function attachedVdis(srUuid: string): string[] {
  try {
    return readdirSync(dirOf(srUuid));
  } catch {
    return [];
  }
}

export function clearAttached(srUuid: string): void {
  rmSync(dirOf(srUuid), { recursive: true, force: true });
}
