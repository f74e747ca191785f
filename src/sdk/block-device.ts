// Which block device holds this host's root file system, so a block SR never
// formats it (sm's createVG raises Rootdev, 105). The root disk itself and the
// partition that holds `/` are refused; another partition on the same disk is
// not root (XenServer's local SR is sda3 beside a root sda1).
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface DeviceNumber {
  major: number;
  minor: number;
}

const key = (d: DeviceNumber): string => `${d.major}:${d.minor}`;

/** A dev_t as the kernel encodes it (glibc's gnu_dev_major/minor). */
export function splitDevT(dev: bigint): DeviceNumber {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** The device number `/` is mounted from, per /proc/self/mountinfo (the last, i.e. top, mount of `/`). */
export function rootMountDevice(mountinfo: string): DeviceNumber | undefined {
  let found: DeviceNumber | undefined;
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f[4] !== '/') continue;
    const m = /^(\d+):(\d+)$/.exec(f[2] ?? '');
    if (m) found = { major: Number(m[1]), minor: Number(m[2]) };
  }
  // Major 0 is an anonymous device (tmpfs, overlay, 9p): no disk holds it.
  return found !== undefined && found.major !== 0 ? found : undefined;
}

/** The whole disk a partition belongs to (sysfs: a partition's directory sits inside its disk's). */
export function diskOf(part: DeviceNumber, sysfs = '/sys'): DeviceNumber {
  const dir = join(sysfs, 'dev/block', key(part));
  if (!existsSync(join(dir, 'partition'))) return part;
  const parent = readFileSync(join(realpathSync(dir), '..', 'dev'), 'utf8').trim();
  const m = /^(\d+):(\d+)$/.exec(parent);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : part;
}

/**
 * Whether `device` is the root file system's partition or the disk that holds it
 * (never, when the root is not on a block device: a guest with a tmpfs root).
 */
export function holdsRootFileSystem(device: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8'), sysfs = '/sys'): boolean {
  const root = rootMountDevice(mountinfo);
  if (root === undefined) return false;
  const dev = splitDevT(statSync(device, { bigint: true }).rdev);
  const rootKeys = new Set([key(root), key(diskOf(root, sysfs))]);
  return rootKeys.has(key(dev));
}
