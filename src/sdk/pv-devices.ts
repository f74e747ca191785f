// device-config:device of the block SR types (ext, lvm), as sm's createVG
// treats it: a comma-separated list of existing block devices, never the disk
// that holds this host's root file system, each wiped at its start before
// pvcreate so old signatures do not survive.
import { closeSync, constants, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { holdsRootFileSystem } from './block-device.js';
import { SRError } from './errors/sr-error.js';
import type { StringMap } from './protocol/requests.js';

/** sm zeroes this much of every device before pvcreate. */
const WIPE_BYTES = 10 * 1024 * 1024;

/**
 * device-config:device as a list: present (ConfigDeviceMissing, 90), each an
 * absolute path to an existing block device (InvalidDev, 19), no duplicates.
 */
export function devicesOf(dc: StringMap): string[] {
  const raw = dc['device'];
  if (raw === undefined || raw.trim() === '') {
    throw new SRError('ConfigDeviceMissing', 'device-config:device is required: the block device(s) for the SR, comma-separated (e.g. /dev/sdb or /dev/sdb,/dev/sdc)');
  }
  const devices = raw.split(',').map((d) => d.trim());
  const seen = new Set<string>();
  for (const d of devices) {
    if (d === '' || !d.startsWith('/') || d.includes('\0')) {
      throw new SRError('InvalidDev', `device-config:device ${JSON.stringify(raw)}: ${JSON.stringify(d)} is not an absolute device path`);
    }
    if (seen.has(d)) throw new SRError('InvalidDev', `device-config:device ${JSON.stringify(raw)} names ${d} twice`);
    seen.add(d);
    let st;
    try {
      st = statSync(d);
    } catch (e) {
      throw new SRError('InvalidDev', `device-config:device ${d} does not exist (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!st.isBlockDevice()) throw new SRError('InvalidDev', `device-config:device ${d} is not a block device`);
  }
  return devices;
}

/** Rootdev (105) for the partition holding `/` or its disk, before anything touches the devices. */
export function refuseRootDevices(devices: readonly string[]): void {
  for (const d of devices) {
    if (holdsRootFileSystem(d)) throw new SRError('Rootdev', `device-config:device ${d} holds this host's root file system (/): it cannot be used for VM storage`);
  }
}

/**
 * Zero the first 10 MiB of the device, opened O_EXCL as sm does: a device that
 * is mounted or held by device-mapper fails with EBUSY → SRInUse.
 */
export function wipeStart(device: string): void {
  let fd: number;
  try {
    fd = openSync(device, constants.O_WRONLY | constants.O_EXCL);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EBUSY') throw new SRError('SRInUse', `device ${device} is in use (mounted, or held by another volume group or mapping)`);
    throw new SRError('InvalidDev', `cannot open device ${device}: ${(e as Error).message}`);
  }
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    // A device smaller than 10 MiB ends the loop with ENOSPC.
    for (let off = 0; off < WIPE_BYTES; off += zeros.length) {
      try {
        writeSync(fd, zeros, 0, zeros.length, off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw new SRError('LVMWrite', `zeroing the start of ${device}: ${(e as Error).message}`);
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
