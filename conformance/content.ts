// Proving data isolation by content: patterns are written and read through the
// path the driver's attach returned (`params`), by the image format the VDI's
// sm_config records, with the SDK's format layer (qemu-img / vhd-util).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { ImageFormat } from '../src/driver-info.js';
import { readRange, writeRange } from '../src/sdk/formats/index.js';

/** The image path inside an attach result's params (plain path, or tapdisk's `<type>:/path`). */
export function imagePathOf(params: string | undefined): string | undefined {
  if (params === undefined || params === '') return undefined;
  const m = /^(?:vhd|aio|qcow2|raw|file):(\/.*)$/.exec(params);
  return m ? m[1] : params.startsWith('/') ? params : undefined;
}

/** What the bytes on disk are, from their magic (qcow2 header, VHD footer copy at offset 0). */
export function detectFormat(path: string): ImageFormat {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    const n = readSync(fd, head, 0, 8, 0);
    if (n >= 4 && head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
    if (n === 8 && head.toString('latin1') === 'conectix') return 'vhd';
    return 'raw';
  } finally {
    closeSync(fd);
  }
}

/** A deterministic, seed-specific pattern (so two writes can never be confused). */
export function pattern(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let pos = 0; pos < length; pos += block.length) {
    block.copy(out, pos);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function isBlockOrFile(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isFile() || st.isBlockDevice();
  } catch {
    return false;
  }
}

export async function writeAt(path: string, format: ImageFormat, offset: number, data: Buffer): Promise<void> {
  await writeRange({ path, format }, offset, data);
}

export async function readAt(path: string, format: ImageFormat, offset: number, length: number): Promise<Buffer> {
  return readRange({ path, format }, offset, length);
}

export function digest(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}
