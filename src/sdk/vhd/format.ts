// On-disk structures of a VHD as blktap's vhd-util writes them (spec vhd-util.md §2):
// footer, dynamic header, parent locators and the blktap "tdbatmap" extension.
// Pure encode/decode; no I/O here.
import { closeSync, openSync, readSync } from 'node:fs';

/** 16 random bytes from the kernel (node:crypto costs milliseconds of start-up to load). */
function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < n) got += readSync(fd, b, got, n - got, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

export const SECTOR = 512;
export const BLOCK_SIZE = 2 * 1024 * 1024;
export const SECTORS_PER_BLOCK = BLOCK_SIZE / SECTOR; // 4096
/** One bitmap sector precedes every data block. */
export const BITMAP_SECTORS = 1;
export const BLOCK_SECTORS_ON_DISK = BITMAP_SECTORS + SECTORS_PER_BLOCK;
export const BAT_UNUSED = 0xffffffff;
export const TABLE_OFFSET = 1536;
/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
export const VHD_EPOCH_OFFSET = 946684800;

export const DISK_FIXED = 2;
export const DISK_DYNAMIC = 3;
export const DISK_DIFF = 4;

export const FOOTER_COOKIE = 'conectix';
export const HEADER_COOKIE = 'cxsparse';
export const BATMAP_COOKIE = 'tdbatmap';
export const CREATOR_TAP = 'tap\0';
export const CREATOR_VERSION_TAP = 0x00010003;
export const BATMAP_VERSION = 0x00010002;
export const FOOTER_HIDDEN_OFFSET = 85;

export const PLAT_CODE_NONE = 0;
export const PLAT_CODE_MACX = 0x4d616358;
export const PLAT_CODE_W2KU = 0x57326b75;
export const PLAT_CODE_W2RU = 0x57327275;
/** blktap writes data_space in bytes (512), not in sectors as the VHD spec says. */
export const LOCATOR_SPACE = 512;

export interface Footer {
  cookie: string;
  features: number;
  version: number;
  dataOffset: bigint;
  timestamp: number;
  creatorApp: string;
  creatorVersion: number;
  creatorOs: number;
  origSize: bigint;
  currSize: bigint;
  geometry: { cyl: number; heads: number; spt: number };
  type: number;
  checksum: number;
  uuid: Buffer;
  savedState: number;
  hidden: number;
  /** Bytes 86..511 (the spec's reserved area), kept to re-encode faithfully. */
  reserved: Buffer;
}

export interface Locator {
  code: number;
  dataSpace: number;
  dataLen: number;
  reserved: number;
  dataOffset: bigint;
}

export interface Header {
  cookie: string;
  dataOffset: bigint;
  tableOffset: bigint;
  version: number;
  maxBat: number;
  blockSize: number;
  checksum: number;
  prtUuid: Buffer;
  prtTimestamp: number;
  reserved1: number;
  prtName: Buffer; // 512 bytes UTF-16BE
  locators: Locator[];
  reserved2: Buffer; // 256 bytes
}

export interface KeyHash {
  cookie: number;
  nonce: Buffer;
  hash: Buffer;
}

export interface BatmapHeader {
  cookie: string;
  offset: bigint;
  sizeSectors: number;
  version: number;
  checksum: number;
  marker: number;
  keyhash: KeyHash;
}

/** One's complement of the byte sum, with the checksum field (4 bytes at `skip`) zeroed. */
export function byteChecksum(buf: Uint8Array, skip = -1): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= skip && i < skip + 4 && skip >= 0) continue;
    sum += buf[i]!;
  }
  return ~sum >>> 0;
}

export const secs = (bytes: number): number => Math.ceil(bytes / SECTOR);
export const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * CHS geometry by the VHD-spec algorithm. Quirk matched from blktap: the total
 * sector count is held in 32 bits, so at >= 2 TiB it wraps (2 TiB -> 0/4/17).
 */
export function geometry(sizeBytes: bigint): { cyl: number; heads: number; spt: number } {
  let ts = Number((sizeBytes >> 9n) & 0xffffffffn);
  if (ts > 65535 * 16 * 255) ts = 65535 * 16 * 255;
  let spt: number;
  let heads: number;
  let cth: number;
  if (ts >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(ts / spt);
  } else {
    spt = 17;
    cth = Math.floor(ts / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
  }
  return { cyl: Math.floor(cth / heads), heads, spt };
}

export function vhdNow(): number {
  return Math.floor(Date.now() / 1000) - VHD_EPOCH_OFFSET;
}

export function newUuid(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

export function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export function newFooter(type: number, size: bigint, origSize: bigint = size): Footer {
  return {
    cookie: FOOTER_COOKIE,
    features: 2,
    version: 0x00010000,
    dataOffset: type === DISK_FIXED ? 0xffffffffffffffffn : 512n,
    timestamp: vhdNow(),
    creatorApp: CREATOR_TAP,
    creatorVersion: CREATOR_VERSION_TAP,
    creatorOs: 0,
    origSize,
    currSize: size,
    geometry: geometry(size),
    type,
    checksum: 0,
    uuid: newUuid(),
    savedState: 0,
    hidden: 0,
    reserved: Buffer.alloc(426),
  };
}

export function encodeFooter(f: Footer): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write(f.cookie, 0, 8, 'latin1');
  b.writeUInt32BE(f.features >>> 0, 8);
  b.writeUInt32BE(f.version >>> 0, 12);
  b.writeBigUInt64BE(f.dataOffset, 16);
  b.writeUInt32BE(f.timestamp >>> 0, 24);
  b.write(f.creatorApp, 28, 4, 'latin1');
  b.writeUInt32BE(f.creatorVersion >>> 0, 32);
  b.writeUInt32BE(f.creatorOs >>> 0, 36);
  b.writeBigUInt64BE(f.origSize, 40);
  b.writeBigUInt64BE(f.currSize, 48);
  b.writeUInt16BE(f.geometry.cyl & 0xffff, 56);
  b.writeUInt8(f.geometry.heads & 0xff, 58);
  b.writeUInt8(f.geometry.spt & 0xff, 59);
  b.writeUInt32BE(f.type >>> 0, 60);
  f.uuid.copy(b, 68, 0, 16);
  b[84] = f.savedState;
  b[FOOTER_HIDDEN_OFFSET] = f.hidden;
  f.reserved.copy(b, 86, 0, 426);
  f.checksum = byteChecksum(b, 64);
  b.writeUInt32BE(f.checksum, 64);
  return b;
}

export function decodeFooter(b: Buffer): Footer {
  return {
    cookie: b.toString('latin1', 0, 8),
    features: b.readUInt32BE(8),
    version: b.readUInt32BE(12),
    dataOffset: b.readBigUInt64BE(16),
    timestamp: b.readUInt32BE(24),
    creatorApp: b.toString('latin1', 28, 32),
    creatorVersion: b.readUInt32BE(32),
    creatorOs: b.readUInt32BE(36),
    origSize: b.readBigUInt64BE(40),
    currSize: b.readBigUInt64BE(48),
    geometry: { cyl: b.readUInt16BE(56), heads: b[58]!, spt: b[59]! },
    type: b.readUInt32BE(60),
    checksum: b.readUInt32BE(64),
    uuid: Buffer.from(b.subarray(68, 84)),
    savedState: b[84]!,
    hidden: b[FOOTER_HIDDEN_OFFSET]!,
    reserved: Buffer.from(b.subarray(86, 512)),
  };
}

/** Why a footer is unusable, in blktap's words, or null when it is fine. */
export function footerProblem(b: Buffer): string | null {
  if (b.toString('latin1', 0, 8) !== FOOTER_COOKIE) return 'invalid cookie';
  if (byteChecksum(b, 64) !== b.readUInt32BE(64)) return 'invalid checksum';
  return null;
}

export function newHeader(maxBat: number): Header {
  const locators: Locator[] = [];
  for (let i = 0; i < 8; i++) locators.push({ code: 0, dataSpace: 0, dataLen: 0, reserved: 0, dataOffset: 0n });
  return {
    cookie: HEADER_COOKIE,
    dataOffset: 0xffffffffffffffffn,
    tableOffset: BigInt(TABLE_OFFSET),
    version: 0x00010000,
    maxBat,
    blockSize: BLOCK_SIZE,
    checksum: 0,
    prtUuid: Buffer.alloc(16),
    prtTimestamp: 0,
    reserved1: 0,
    prtName: Buffer.alloc(512),
    locators,
    reserved2: Buffer.alloc(256),
  };
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(1024);
  b.write(h.cookie, 0, 8, 'latin1');
  b.writeBigUInt64BE(h.dataOffset, 8);
  b.writeBigUInt64BE(h.tableOffset, 16);
  b.writeUInt32BE(h.version >>> 0, 24);
  b.writeUInt32BE(h.maxBat >>> 0, 28);
  b.writeUInt32BE(h.blockSize >>> 0, 32);
  h.prtUuid.copy(b, 40, 0, 16);
  b.writeUInt32BE(h.prtTimestamp >>> 0, 56);
  b.writeUInt32BE(h.reserved1 >>> 0, 60);
  h.prtName.copy(b, 64, 0, 512);
  h.locators.forEach((l, i) => {
    const o = 576 + i * 24;
    b.writeUInt32BE(l.code >>> 0, o);
    b.writeUInt32BE(l.dataSpace >>> 0, o + 4);
    b.writeUInt32BE(l.dataLen >>> 0, o + 8);
    b.writeUInt32BE(l.reserved >>> 0, o + 12);
    b.writeBigUInt64BE(l.dataOffset, o + 16);
  });
  h.reserved2.copy(b, 768, 0, 256);
  h.checksum = byteChecksum(b, 36);
  b.writeUInt32BE(h.checksum, 36);
  return b;
}

export function decodeHeader(b: Buffer): Header {
  const locators: Locator[] = [];
  for (let i = 0; i < 8; i++) {
    const o = 576 + i * 24;
    locators.push({
      code: b.readUInt32BE(o),
      dataSpace: b.readUInt32BE(o + 4),
      dataLen: b.readUInt32BE(o + 8),
      reserved: b.readUInt32BE(o + 12),
      dataOffset: b.readBigUInt64BE(o + 16),
    });
  }
  return {
    cookie: b.toString('latin1', 0, 8),
    dataOffset: b.readBigUInt64BE(8),
    tableOffset: b.readBigUInt64BE(16),
    version: b.readUInt32BE(24),
    maxBat: b.readUInt32BE(28),
    blockSize: b.readUInt32BE(32),
    checksum: b.readUInt32BE(36),
    prtUuid: Buffer.from(b.subarray(40, 56)),
    prtTimestamp: b.readUInt32BE(56),
    reserved1: b.readUInt32BE(60),
    prtName: Buffer.from(b.subarray(64, 576)),
    locators,
    reserved2: Buffer.from(b.subarray(768, 1024)),
  };
}

export function headerProblem(b: Buffer): string | null {
  if (b.toString('latin1', 0, 8) !== HEADER_COOKIE) return 'invalid cookie';
  if (byteChecksum(b, 36) !== b.readUInt32BE(36)) return 'invalid checksum';
  return null;
}

/** Parent name as stored in the header: UTF-16BE, NUL-terminated. */
export function decodeParentName(b: Buffer): string {
  let end = 0;
  while (end + 1 < b.length && (b[end] !== 0 || b[end + 1] !== 0)) end += 2;
  const le = Buffer.from(b.subarray(0, end));
  le.swap16();
  return le.toString('utf16le');
}

export function encodeParentName(name: string): Buffer {
  const out = Buffer.alloc(512);
  const le = Buffer.from(name, 'utf16le');
  if (le.length > 512) throw new RangeError(`parent name too long: ${name}`);
  le.swap16();
  le.copy(out);
  return out;
}

export function newBatmapHeader(offset: bigint, sizeSectors: number): BatmapHeader {
  return {
    cookie: BATMAP_COOKIE,
    offset,
    sizeSectors,
    version: BATMAP_VERSION,
    checksum: 0xffffffff,
    marker: 0,
    keyhash: { cookie: 0, nonce: Buffer.alloc(32), hash: Buffer.alloc(32) },
  };
}

export function encodeBatmapHeader(h: BatmapHeader): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write(h.cookie, 0, 8, 'latin1');
  b.writeBigUInt64BE(h.offset, 8);
  b.writeUInt32BE(h.sizeSectors >>> 0, 16);
  b.writeUInt32BE(h.version >>> 0, 20);
  b.writeUInt32BE(h.checksum >>> 0, 24);
  b[28] = h.marker;
  b[29] = h.keyhash.cookie;
  h.keyhash.nonce.copy(b, 30, 0, 32);
  h.keyhash.hash.copy(b, 62, 0, 32);
  return b;
}

export function decodeBatmapHeader(b: Buffer): BatmapHeader {
  return {
    cookie: b.toString('latin1', 0, 8),
    offset: b.readBigUInt64BE(8),
    sizeSectors: b.readUInt32BE(16),
    version: b.readUInt32BE(20),
    checksum: b.readUInt32BE(24),
    marker: b[28]!,
    keyhash: { cookie: b[29]!, nonce: Buffer.from(b.subarray(30, 62)), hash: Buffer.from(b.subarray(62, 94)) },
  };
}

/** Checksum of the batmap: one's complement of the byte sum of the whole map area. */
export function batmapChecksum(map: Uint8Array): number {
  return byteChecksum(map);
}

/** blktap writes batmaps for creator "tap" version >= 1.2. */
export function hasBatmapVersion(f: Footer): boolean {
  return f.creatorApp === CREATOR_TAP && f.creatorVersion >= 0x00010002;
}

/** Byte layout of the metadata of a tap dynamic/differencing disk with `maxBat` entries. */
export function metadataLayout(maxBat: number, differencing: boolean) {
  const batBytes = roundUp(maxBat * 4, SECTOR);
  const batmapHeaderOffset = TABLE_OFFSET + batBytes;
  const batmapOffset = batmapHeaderOffset + SECTOR;
  const batmapSectors = secs(Math.ceil(maxBat / 8));
  const locatorsOffset = batmapOffset + batmapSectors * SECTOR;
  const end = locatorsOffset + (differencing ? 3 * LOCATOR_SPACE : 0);
  return { batBytes, batmapHeaderOffset, batmapOffset, batmapSectors, locatorsOffset, end };
}
