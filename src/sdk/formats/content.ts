// Reading and writing virtual-disk content through the chain, for tests, the
// conformance suite and convert. VHDs go through vhd-util (qemu cannot follow
// tap VHD chains, and qemu-io writes corrupt tap VHDs: spec/vhd-util.md §5);
// qcow2 and raw go through qemu-img/qemu-io, always with the format given.
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as qemuImg from '../tools/qemu-img.js';
import { runTool, runToolBinary } from '../tools/run.js';
import { readQcow2Header } from './qcow2-header.js';
import { qemuImgDdArgv, qemuIoWriteFileArgv, vhdExportArgv, vhdReadBytesArgv, vhdWriteArgv } from './tool-extras.js';
import type { ImageRef } from './types.js';
import { readVhdHeader } from './vhd-header.js';
import { storageSize } from './size.js';

const VHD_READ_PIECE = 32 * 1024 * 1024;

/** Virtual size from the header (no process). */
export function virtualSizeOf(ref: ImageRef): number {
  switch (ref.format) {
    case 'vhd': return readVhdHeader(ref.path).currentSize;
    case 'qcow2': return readQcow2Header(ref.path).virtualSize;
    case 'raw': return storageSize(ref.path);
  }
}

function checkRange(ref: ImageRef, offset: number, length: number): void {
  const size = virtualSizeOf(ref);
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > size) {
    throw new RangeError(`range ${offset}+${length} is outside ${ref.path} (virtual size ${size} bytes)`);
  }
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'smapi-fmt-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Largest power of two ≤ 1 MiB (and ≥ 512) dividing both ends, so qemu-img dd moves big blocks. */
function ddBlockSize(start: number, end: number): number {
  let bs = 1024 * 1024;
  while (bs > 512 && (start % bs !== 0 || end % bs !== 0)) bs /= 2;
  return bs;
}

/** `length` bytes of chain-resolved content at `offset`. */
export async function readRange(ref: ImageRef, offset: number, length: number): Promise<Buffer> {
  checkRange(ref, offset, length);
  if (length === 0) return Buffer.alloc(0);
  if (ref.format === 'vhd') {
    // Through stdout, in pieces small enough for the tool runner's output buffer.
    const parts: Buffer[] = [];
    for (let pos = offset; pos < offset + length; pos += VHD_READ_PIECE) {
      const n = Math.min(VHD_READ_PIECE, offset + length - pos);
      const out = await runToolBinary(vhdReadBytesArgv({ path: ref.path, offset: pos, length: n }));
      if (out.stdout.length !== n) throw new Error(`vhd-util read returned ${out.stdout.length} bytes at ${pos}, expected ${n}`);
      parts.push(out.stdout);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
  const size = virtualSizeOf(ref);
  const start = Math.floor(offset / 512) * 512;
  const end = Math.min(Math.ceil((offset + length) / 512) * 512, size);
  if (end % 512 !== 0) {
    // An odd-sized raw file: its last partial sector is read directly (raw has no chain).
    return readRawFile(ref.path, offset, length);
  }
  const bs = ddBlockSize(start, end);
  return withTempDir(async (dir) => {
    const outPath = join(dir, 'range.raw');
    await runTool(qemuImgDdArgv({ path: ref.path, format: ref.format === 'raw' ? 'raw' : 'qcow2', blockSize: bs, skip: start / bs, count: end / bs, output: outPath }));
    const got = readRawFile(outPath, offset - start, length);
    return got;
  });
}

function readRawFile(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, offset + got);
      if (n === 0) throw new Error(`${path}: short read at ${offset + got}`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Write `data` at `offset` into the image itself (never into its parents). */
export async function writeRange(ref: ImageRef, offset: number, data: Buffer): Promise<void> {
  checkRange(ref, offset, data.length);
  if (data.length === 0) return;
  await withTempDir(async (dir) => {
    const input = join(dir, 'data.bin');
    writeFileSync(input, data);
    if (ref.format === 'vhd') await runTool(vhdWriteArgv({ path: ref.path, offset, input }));
    else await runTool(qemuIoWriteFileArgv({ path: ref.path, format: ref.format, offset, length: data.length, input }));
  });
}

/** The whole chain-resolved disk as a sparse raw file at `output` (which must not exist). */
export async function exportRaw(ref: ImageRef, output: string): Promise<void> {
  if (ref.format === 'vhd') await runTool(vhdExportArgv({ path: ref.path, output }));
  else await qemuImg.convert({ source: { path: ref.path, format: ref.format }, target: { path: output, format: 'raw' } });
}

/** sha256 (hex) of the chain-resolved content, the first `length` bytes (default: all of it). */
export async function contentSha256(ref: ImageRef, length?: number): Promise<string> {
  return withTempDir(async (dir) => {
    const out = join(dir, 'content.raw');
    await exportRaw(ref, out);
    return sha256File(out, length);
  });
}

export function sha256File(path: string, length?: number): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const total = length ?? statSync(path).size;
    const buf = Buffer.alloc(4 * 1024 * 1024);
    let pos = 0;
    while (pos < total) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, total - pos), pos);
      if (n === 0) throw new Error(`${path}: ${total - pos} bytes short`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
