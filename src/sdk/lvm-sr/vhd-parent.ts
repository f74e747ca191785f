// The parent reference of a VHD child on an LV, written exactly as xapi's LVHD
// has it: header parent name `VHD-<uuid>` / `LV-<uuid>` and the three parent
// locators relative to /dev/<vg>/ (`file://./VHD-<uuid>`, `.\VHD-<uuid>`).
// blktap's vhd-util keeps /dev/<vg>/<lv> names as given; a vhd-util that
// canonicalises paths would store the device-mapper (or loop) node instead
// (`dm-3`), which changes from boot to boot. So after every `vhd-util
// snapshot` on an LV the driver rewrites these fields in place (same sizes,
// header checksum recomputed); parent UUID and timestamp are left as written.
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { storageSize } from '../formats/size.js';

const MACX = 0x4d616358;
const W2KU = 0x57326b75;
const W2RU = 0x57327275;

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  if (n !== len) throw new Error(`short read at ${pos}`);
  return b;
}

/** Ones' complement of the byte sum with the checksum field (offset 36) zeroed. */
export function headerChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 1024; i++) if (i < 36 || i >= 40) sum = (sum + header[i]!) >>> 0;
  return ~sum >>> 0;
}

export function setLvParentName(childPath: string, parentLv: string): void {
  if (!/^[A-Za-z0-9+_.-]+$/.test(parentLv)) throw new TypeError(`parent LV name ${JSON.stringify(parentLv)} is not allowed`);
  const fd = openSync(childPath, 'r+');
  try {
    const footer = readAt(fd, 0, 512);
    if (footer.toString('latin1', 0, 8) !== 'conectix') throw new Error(`${childPath}: no VHD footer at offset 0`);
    const headerOffset = Number(footer.readBigUInt64BE(16));
    const header = readAt(fd, headerOffset, 1024);
    if (header.toString('latin1', 0, 8) !== 'cxsparse') throw new Error(`${childPath}: no VHD header at ${headerOffset}`);
    const name = Buffer.from(parentLv, 'utf16le');
    name.swap16();
    header.fill(0, 64, 576);
    name.copy(header, 64);
    const mac = Buffer.from(`file://./${parentLv}`, 'utf8');
    const win = Buffer.from(`.\\${parentLv}`, 'utf16le');
    for (let i = 0; i < 8; i++) {
      const e = 576 + i * 24;
      const code = header.readUInt32BE(e);
      if (code !== MACX && code !== W2KU && code !== W2RU) continue;
      const spaceField = header.readUInt32BE(e + 4);
      const space = spaceField < 512 ? spaceField * 512 : spaceField;
      const off = Number(header.readBigUInt64BE(e + 16));
      const payload = code === MACX ? mac : win;
      if (payload.length > space) throw new Error(`${childPath}: parent locator ${i} has ${space} bytes, ${payload.length} needed`);
      const area = Buffer.alloc(space);
      payload.copy(area);
      writeSync(fd, area, 0, area.length, off);
      header.writeUInt32BE(payload.length, e + 8);
    }
    header.writeUInt32BE(headerChecksum(header), 36);
    writeSync(fd, header, 0, 1024, headerOffset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * After an LV holding a VHD grew (lvextend), put the footer at the device's new
 * end, as LVHD's inflate does (`vhd-util modify -s`): the copy at offset 0 is
 * the footer itself (same bytes for dynamic/differencing disks).
 */
export function moveVhdFooterToEnd(path: string): void {
  const size = storageSize(path);
  const fd = openSync(path, 'r+');
  try {
    const footer = readAt(fd, 0, 512);
    if (footer.toString('latin1', 0, 8) !== 'conectix') throw new Error(`${path}: no VHD footer copy at offset 0`);
    writeSync(fd, footer, 0, 512, size - 512);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
