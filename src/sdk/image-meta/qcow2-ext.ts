// Our qcow2 header extension: where it is, what it holds, and the two ways it
// is written. Layout (big-endian), extension type 0x766d6d64 ("vmmd"):
//
//   payload  0 'VMMD' | 4 u16 version=1 | 6 u16 flags=0 | 8 u32 slot_cap | 12 u32 reserved
//            16 slot A | 16+SLOT slot B          (SLOT = 16 + slot_cap)
//   slot     0 u64 generation | 8 u32 length (0xffffffff = "no own value") | 12 u32 crc32c | 16 data[slot_cap]
//   crc32c over generation, length and data[0..length).
//
// Readers take the valid slot with the highest generation; an update writes
// only the other slot (one pwrite + fsync), so a torn or interrupted write
// leaves the previous value readable. The extension's size never changes
// after it is added, so an update never moves another header byte.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { QCOW2_MAGIC } from '../formats/qcow2-header.js';
import { crc32c } from './crc32c.js';
import { ImageMetaError } from './errors.js';
import { fistIs, imageMetaFist } from './fist.js';
import { MAX_VALUE_BYTES } from './rules.js';

export const EXT_IMAGE_META = 0x766d6d64;
const PAYLOAD_MAGIC = 0x564d4d44; // 'VMMD'
const PAYLOAD_HEAD = 16;
const SLOT_HEAD = 16;
const CLEARED = 0xffffffff;

/**
 * Header bytes kept free for QEMU beyond what the image uses today: the
 * feature-name table (392+8), backing-format, hidden, bitmaps and data-file
 * extensions, a backing name growing to 1023 bytes, and 1536 bytes of slack
 * (a header left nearly full made `rebase` fail and `bitmap --add` silently
 * lose the bitmap, spec §3.3).
 */
export const QEMU_HEADROOM = 400 + 16 + 16 + 32 + 1023 + 1536;
const SMALLEST_CLUSTER = 4096;
/** What the extensions before ours may already use when ours is added (feature table, backing format, hidden flag). */
const EXISTING_EXTENSIONS = 512;

export function slotCapFor(clusterSize: number): number {
  const fit = Math.floor(((clusterSize - 112 - EXISTING_EXTENSIONS - QEMU_HEADROOM - 8 - 8 - PAYLOAD_HEAD) / 2 - SLOT_HEAD) / 8) * 8;
  return Math.max(0, Math.min(MAX_VALUE_BYTES, fit));
}

export function payloadLength(slotCap: number): number {
  return PAYLOAD_HEAD + 2 * (SLOT_HEAD + slotCap);
}

interface Layout {
  clusterSize: number;
  /** Offset of the first extension header. */
  extStart: number;
  /** Offset of the end-of-extensions marker. */
  endMarker: number;
  /** Offset of our extension's 8-byte header, or null. */
  ours: number | null;
  oursLength: number;
  backingOffset: number;
  backingLength: number;
}

export interface Slot {
  gen: bigint;
  /** null: the image has no own value (cleared). */
  value: string | null;
}

export interface Qcow2MetaState {
  slotCap: number;
  /** Valid slots, highest generation first. */
  slots: { index: 0 | 1; slot: Slot }[];
}

function readCluster0(fd: number, path: string): Buffer {
  const head = Buffer.alloc(104);
  const n = readSync(fd, head, 0, head.length, 0);
  if (n < 72 || head.readUInt32BE(0) !== QCOW2_MAGIC) throw new ImageMetaError('not-an-image', `${path} is not a qcow2 image (no QFI\\xfb magic)`);
  const bits = head.readUInt32BE(20);
  if (bits < 9 || bits > 21) throw new ImageMetaError('corrupt', `${path}: qcow2 cluster_bits ${bits} is out of range`);
  const size = 1 << bits;
  const buf = Buffer.alloc(size);
  const m = readSync(fd, buf, 0, size, 0);
  return buf.subarray(0, m);
}

function layoutOf(buf: Buffer, path: string): Layout {
  const clusterSize = 1 << buf.readUInt32BE(20);
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new ImageMetaError('corrupt', `${path}: qcow2 version ${version}`);
  const extStart = version === 2 ? 72 : buf.readUInt32BE(100);
  const backingOffset = Number(buf.readBigUInt64BE(8));
  const backingLength = buf.readUInt32BE(16);
  const limit = Math.min(buf.length, clusterSize, backingOffset === 0 ? clusterSize : backingOffset);
  let off = extStart;
  let ours: number | null = null;
  let oursLength = 0;
  for (;;) {
    if (off + 8 > limit) throw new ImageMetaError('corrupt', `${path}: qcow2 header extensions run past the header area`);
    const type = buf.readUInt32BE(off);
    const len = buf.readUInt32BE(off + 4);
    if (type === 0) break;
    if (off + 8 + len > limit) throw new ImageMetaError('corrupt', `${path}: qcow2 header extension 0x${type.toString(16)} runs past the header area`);
    if (type === EXT_IMAGE_META) {
      ours = off;
      oursLength = len;
    }
    off += 8 + Math.ceil(len / 8) * 8;
  }
  return { clusterSize, extStart, endMarker: off, ours, oursLength, backingOffset, backingLength };
}

function decodeSlot(b: Buffer, cap: number): Slot | null {
  const gen = b.readBigUInt64BE(0);
  const len = b.readUInt32BE(8);
  const crc = b.readUInt32BE(12);
  if (len !== CLEARED && len > cap) return null;
  const dataLen = len === CLEARED ? 0 : len;
  const sum = crc32c(Buffer.concat([b.subarray(0, 12), b.subarray(SLOT_HEAD, SLOT_HEAD + dataLen)]));
  if (sum !== crc) return null;
  if (len === CLEARED) return { gen, value: null };
  const data = b.subarray(SLOT_HEAD, SLOT_HEAD + len);
  const value = new TextDecoder('utf-8', { fatal: true }).decode(data);
  return { gen, value };
}

function encodeSlot(slot: Slot, cap: number): Buffer {
  const data = slot.value === null ? Buffer.alloc(0) : Buffer.from(slot.value, 'utf8');
  if (data.length > cap) throw new ImageMetaError('too-long', `the value is ${data.length} bytes; this image's header holds at most ${cap}`);
  const b = Buffer.alloc(SLOT_HEAD + cap);
  b.writeBigUInt64BE(slot.gen, 0);
  b.writeUInt32BE(slot.value === null ? CLEARED : data.length, 8);
  data.copy(b, SLOT_HEAD);
  b.writeUInt32BE(crc32c(Buffer.concat([b.subarray(0, 12), data])), 12);
  return b;
}

function decodePayload(p: Buffer, path: string): Qcow2MetaState {
  if (p.length < PAYLOAD_HEAD || p.readUInt32BE(0) !== PAYLOAD_MAGIC) throw new ImageMetaError('corrupt', `${path}: image-meta header extension has a bad payload magic`);
  const version = p.readUInt16BE(4);
  if (version !== 1) throw new ImageMetaError('unsupported', `${path}: image-meta header extension version ${version} is newer than this tool (1)`);
  const cap = p.readUInt32BE(8);
  if (p.length !== payloadLength(cap)) throw new ImageMetaError('corrupt', `${path}: image-meta header extension is ${p.length} bytes, slot size ${cap} needs ${payloadLength(cap)}`);
  const slots: Qcow2MetaState['slots'] = [];
  for (const index of [0, 1] as const) {
    const at = PAYLOAD_HEAD + index * (SLOT_HEAD + cap);
    let s: Slot | null = null;
    try {
      s = decodeSlot(p.subarray(at, at + SLOT_HEAD + cap), cap);
    } catch {
      s = null; // not UTF-8 although the CRC matched: treat as torn
    }
    if (s !== null) slots.push({ index, slot: s });
  }
  slots.sort((a, b) => (a.slot.gen > b.slot.gen ? -1 : a.slot.gen < b.slot.gen ? 1 : 0));
  return { slotCap: cap, slots };
}

function withFd<T>(path: string, flags: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (e) {
    throw new ImageMetaError('io', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** Our extension's state, or null when the image has no extension (no own value). */
export function readQcow2MetaState(path: string): Qcow2MetaState | null {
  return withFd(path, 'r', (fd) => {
    const buf = readCluster0(fd, path);
    const l = layoutOf(buf, path);
    if (l.ours === null) return null;
    return decodePayload(buf.subarray(l.ours + 8, l.ours + 8 + l.oursLength), path);
  });
}

/**
 * The own value held in a header already parsed (its extensions), or
 * undefined when our extension there cannot be decoded (the caller reads the
 * image, which reports why).
 */
export function ownValueOfExtensions(extensions: readonly { type: number; data: Buffer }[], path: string): string | null | undefined {
  const ours = extensions.find((e) => e.type === EXT_IMAGE_META);
  if (ours === undefined) return null;
  try {
    return decodePayload(ours.data, path).slots[0]?.slot.value ?? null;
  } catch {
    return undefined;
  }
}

export function readQcow2Own(path: string): string | null {
  const s = readQcow2MetaState(path);
  return s?.slots[0]?.slot.value ?? null;
}

/** Largest value `path` can hold (the slot size once the extension exists). */
export function qcow2Capacity(path: string): number {
  return withFd(path, 'r', (fd) => {
    const buf = readCluster0(fd, path);
    const l = layoutOf(buf, path);
    if (l.ours !== null) return buf.readUInt32BE(l.ours + 8 + 8);
    refuseSmallClusters(path, l.clusterSize);
    return slotCapFor(l.clusterSize);
  });
}

function pwriteAll(fd: number, b: Buffer, pos: number): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done, pos + done);
}

/**
 * Write the new value into the inactive slot. The caller holds QEMU's locks.
 * Adds the extension first when the image has none.
 */
export function writeQcow2Own(path: string, value: string | null): void {
  withFd(path, 'r+', (fd) => {
    if (!fstatSync(fd).isFile()) throw new ImageMetaError('unsupported', `${path} is not a regular file`);
    const buf = readCluster0(fd, path);
    const l = layoutOf(buf, path);
    if (l.ours === null) {
      if (value === null) return; // nothing to clear
      addExtension(fd, path, buf, l, value);
      return;
    }
    const state = decodePayload(buf.subarray(l.ours + 8, l.ours + 8 + l.oursLength), path);
    const active = state.slots[0];
    if (active !== undefined && active.slot.value === value) return;
    const target: 0 | 1 = active === undefined ? 0 : active.index === 0 ? 1 : 0;
    const gen = (active?.slot.gen ?? 0n) + 1n;
    const bytes = encodeSlot({ gen, value }, state.slotCap);
    const at = l.ours + 8 + PAYLOAD_HEAD + target * (SLOT_HEAD + state.slotCap);
    if (fistIs('image-meta-qcow2-slot-torn')) {
      // A torn write, for crash tests: the slot header (new generation and
      // checksum) and half of the new data reach the disk, the rest does not.
      const len = value === null ? 0 : Buffer.byteLength(value, 'utf8');
      pwriteAll(fd, bytes.subarray(0, SLOT_HEAD + Math.floor(len / 2)), at);
      fsyncSync(fd);
      imageMetaFist('image-meta-qcow2-slot-torn');
    }
    pwriteAll(fd, bytes, at);
    fsyncSync(fd);
    imageMetaFist('image-meta-qcow2-slot-written');
  });
}

function refuseSmallClusters(path: string, clusterSize: number): void {
  if (clusterSize < SMALLEST_CLUSTER) {
    throw new ImageMetaError('no-room', `${path} has ${clusterSize}-byte clusters; machine data needs clusters of at least ${SMALLEST_CLUSTER} bytes (the whole qcow2 header lives in the first cluster)`);
  }
}

/**
 * Add the extension at the end of the list, in four steps that each leave a
 * valid image (with or without the extension): copy the backing file name
 * past the new extension; point the header at the copy (one aligned 8-byte
 * write); write the extension body and a new end marker; then turn the old
 * end marker into our extension's header (one aligned 8-byte write).
 */
function addExtension(fd: number, path: string, buf: Buffer, l: Layout, value: string): void {
  refuseSmallClusters(path, l.clusterSize);
  const cap = slotCapFor(l.clusterSize);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > cap) throw new ImageMetaError('too-long', `the value is ${bytes} bytes; ${path} (${l.clusterSize}-byte clusters) holds at most ${cap}`);
  const hasBacking = l.backingOffset !== 0;
  if (hasBacking && l.backingOffset < l.endMarker + 8) throw new ImageMetaError('corrupt', `${path}: backing file name at ${l.backingOffset} overlaps the header extensions`);
  const len = payloadLength(cap);
  const bodyAt = l.endMarker + 8;
  const newEnd = bodyAt + len;
  const oldNameEnd = hasBacking ? l.backingOffset + l.backingLength : 0;
  const nameAt = Math.max(newEnd + 8, Math.ceil(oldNameEnd / 8) * 8);
  const usedEnd = hasBacking ? nameAt + l.backingLength : newEnd + 8;
  // Room QEMU still needs: what it may add later must fit after a rewrite of its own.
  if (newEnd + 8 + QEMU_HEADROOM > l.clusterSize || usedEnd > l.clusterSize) {
    throw new ImageMetaError('no-room', `${path}: the first cluster (${l.clusterSize} bytes) has no room for machine data while leaving QEMU the ${QEMU_HEADROOM} bytes it may need`);
  }
  if (hasBacking) {
    pwriteAll(fd, buf.subarray(l.backingOffset, l.backingOffset + l.backingLength), nameAt);
    fsyncSync(fd);
    imageMetaFist('image-meta-qcow2-create-name');
    const ptr = Buffer.alloc(8);
    ptr.writeBigUInt64BE(BigInt(nameAt));
    pwriteAll(fd, ptr, 8);
    fsyncSync(fd);
    imageMetaFist('image-meta-qcow2-create-pointer');
  }
  const body = Buffer.alloc(nameAt - bodyAt);
  body.writeUInt32BE(PAYLOAD_MAGIC, 0);
  body.writeUInt16BE(1, 4);
  body.writeUInt32BE(cap, 8);
  encodeSlot({ gen: 1n, value }, cap).copy(body, PAYLOAD_HEAD);
  // slot B stays zero (invalid); the end marker and the gap up to the name are zero.
  pwriteAll(fd, body, bodyAt);
  fsyncSync(fd);
  imageMetaFist('image-meta-qcow2-create-body');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(EXT_IMAGE_META, 0);
  head.writeUInt32BE(len, 4);
  pwriteAll(fd, head, l.endMarker);
  fsyncSync(fd);
  imageMetaFist('image-meta-qcow2-create-linked');
}
