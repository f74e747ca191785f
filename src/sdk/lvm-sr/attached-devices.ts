// Which devices an attached LVM SR is on, kept with the SR's runtime state
// (<SM_RUN_DIR>/lvm-sr/<sr>/devices.json, written at sr_attach) so that tools
// run outside a driver call (bin/sm-gc <sr-uuid>) reach the same PVs the
// driver does, without scanning every block device of the host.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { env } from '../env.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { checkUuid } from './naming.js';

const Devices = z.array(z.string().regex(/^\/dev\/\S+$/)).min(1);

export function lvmSrRunDir(srUuid: string): string {
  return join(env.runDir(), 'lvm-sr', checkUuid('sr_uuid', srUuid));
}

/** The marker sr_attach leaves (handlers.ts): the SR is plugged on this host. */
export const attachedMarkerOf = (srUuid: string): string => join(lvmSrRunDir(srUuid), 'attached');

const devicesFile = (srUuid: string): string => join(lvmSrRunDir(srUuid), 'devices.json');

export function recordAttachedDevices(srUuid: string, devices: readonly string[]): void {
  writeFileAtomic(devicesFile(srUuid), `${JSON.stringify(Devices.parse(devices))}\n`);
}

/** The devices recorded at sr_attach, or null (not attached here, or attached by an older driver). */
export function attachedDevices(srUuid: string): string[] | null {
  try {
    return Devices.parse(JSON.parse(readFileSync(devicesFile(srUuid), 'utf8')));
  } catch {
    return null;
  }
}
