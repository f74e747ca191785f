// Byte size of an image's storage: a regular file's length, or a block
// device's size (an LV or loop device), which stat reports as 0.
import { readFileSync, statSync, type Stats } from 'node:fs';

/** Linux dev_t → major/minor (glibc's gnu_dev_major/minor encoding). */
export function devMajorMinor(rdev: number): [number, number] {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major, minor];
}

export function blockDeviceSize(st: Stats): number {
  const [major, minor] = devMajorMinor(st.rdev);
  const sectors = readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim();
  if (!/^\d+$/.test(sectors)) throw new Error(`block device ${major}:${minor}: unexpected size ${JSON.stringify(sectors)}`);
  return Number(sectors) * 512;
}

/** Length in bytes of a regular file or block device; anything else is an error naming the path. */
export function storageSize(path: string, st: Stats = statSync(path)): number {
  if (st.isFile()) return st.size;
  if (st.isBlockDevice()) return blockDeviceSize(st);
  throw new Error(`${path} is neither a regular file nor a block device`);
}
