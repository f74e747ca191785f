// The few VHD header fields the format layer needs without a process: exact
// current size, disk type, whether the parent is raw (blktap writes a zero
// parent UUID with `-m`), and every parent locator (checkSafe must see all of
// them, not only the one vhd-util happens to resolve). Field offsets: the VHD
// spec, as blktap writes them (spec/vhd-util.md §2).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { storageSize } from './size.js';

export type VhdDiskType = 'fixed' | 'dynamic' | 'differencing';

export interface VhdLocator {
  code: 'MacX' | 'W2ku' | 'W2ru';
  /** The decoded path as stored (relative or absolute). */
  stored: string;
  /** The stored path made absolute against the child's directory. */
  resolved: string;
}

export interface VhdHeaderInfo {
  diskType: VhdDiskType;
  currentSize: number;
  hidden: boolean;
  /** Header parent name (a basename), or null for non-differencing disks. */
  parentName: string | null;
  /** True for a differencing disk whose parent is a raw file (zero parent UUID). */
  parentIsRaw: boolean;
  locators: VhdLocator[];
}

export class VhdHeaderError extends Error {
  override readonly name = 'VhdHeaderError';
}

const LOCATOR_CODES: Record<number, VhdLocator['code']> = { 0x4d616358: 'MacX', 0x57326b75: 'W2ku', 0x57327275: 'W2ru' };
const DISK_TYPES: Record<number, VhdDiskType> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  return b.subarray(0, n);
}

export function readVhdHeader(path: string): VhdHeaderInfo {
  const bad = (why: string): never => {
    throw new VhdHeaderError(`${path} is not a valid VHD: ${why}`);
  };
  const fd = openSync(path, 'r');
  try {
    const size = storageSize(path, fstatSync(fd));
    let footer = readAt(fd, 0, 512);
    if (footer.length < 512 || footer.toString('latin1', 0, 8) !== 'conectix') {
      // Fixed disks have only the footer at the end.
      footer = size >= 512 ? readAt(fd, size - 512, 512) : Buffer.alloc(0);
      if (footer.length < 512 || footer.toString('latin1', 0, 8) !== 'conectix') bad('no VHD footer (cookie "conectix")');
    }
    const diskType = DISK_TYPES[footer.readUInt32BE(60)] ?? bad(`disk type ${footer.readUInt32BE(60)}`);
    const currentSize = Number(footer.readBigUInt64BE(48));
    const hidden = footer[85] !== 0;
    if (diskType !== 'differencing') return { diskType, currentSize, hidden, parentName: null, parentIsRaw: false, locators: [] };
    const headerOffset = Number(footer.readBigUInt64BE(16));
    const header = readAt(fd, headerOffset, 1024);
    if (header.length < 1024 || header.toString('latin1', 0, 8) !== 'cxsparse') bad(`no dynamic header at ${headerOffset}`);
    const parentIsRaw = header.subarray(40, 56).every((b) => b === 0);
    const parentName = utf16be(header.subarray(64, 576));
    const dir = dirname(resolve(path));
    const locators: VhdLocator[] = [];
    for (let i = 0; i < 8; i++) {
      const e = header.subarray(576 + i * 24, 600 + i * 24);
      const code = LOCATOR_CODES[e.readUInt32BE(0)];
      const len = e.readUInt32BE(8);
      const off = Number(e.readBigUInt64BE(16));
      if (code === undefined || len === 0 || len > 4096) continue;
      const raw = readAt(fd, off, len);
      const stored =
        code === 'MacX' ? raw.toString('utf8').replace(/^file:\/\//, '') : raw.toString('utf16le').replace(/\\/g, '/').replace(/^[A-Za-z]:/, '');
      const clean = stored.replace(/\0+$/, '');
      locators.push({ code, stored: clean, resolved: isAbsolute(clean) ? resolve(clean) : resolve(dir, clean) });
    }
    return { diskType, currentSize, hidden, parentName, parentIsRaw, locators };
  } finally {
    closeSync(fd);
  }
}

function utf16be(b: Buffer): string {
  const swapped = Buffer.from(b);
  swapped.swap16();
  return swapped.toString('utf16le').replace(/\0.*$/s, '');
}
