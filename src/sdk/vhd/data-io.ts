// Byte-level writes into a VHD and raw export of a chain, both streaming: memory
// stays at one 2 MiB block whatever the disk size.
import { ftruncateSync, readSync, writeSync } from 'node:fs';
import { EINVAL, VhdError } from './errors.js';
import { BLOCK_SIZE, SECTOR, SECTORS_PER_BLOCK } from './format.js';
import { Chain } from './chain.js';
import { writeFully } from './vhd-file.js';

/** Source of bytes: returns how many bytes it put into `buf` (0 = end). */
export type ByteSource = (buf: Buffer) => number;

export function fdSource(fd: number): ByteSource {
  return (buf) => {
    let got = 0;
    while (got < buf.length) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, null);
      } catch (e) {
        if ((e as { code?: string }).code === 'EAGAIN') continue;
        if ((e as { code?: string }).code === 'EOF') break;
        throw e;
      }
      if (n === 0) break;
      got += n;
    }
    return got;
  };
}

/**
 * Write bytes from `src` at byte `offset` of the VHD at `path` (its own blocks only;
 * partial sectors at either end are merged with the chain's current content).
 * Returns the number of bytes written.
 */
export function writeBytes(path: string, offset: number, src: ByteSource): number {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new VhdError(EINVAL, `invalid offset ${offset}`);
  const chain = Chain.open(path, { write: true });
  try {
    const top = chain.top;
    const buf = Buffer.alloc(BLOCK_SIZE + SECTOR);
    let pos = offset;
    let total = 0;
    for (;;) {
      // fill up to the next block boundary so each write touches one block
      const room = BLOCK_SIZE - (pos % BLOCK_SIZE);
      const lead = pos % SECTOR;
      const n = src(buf.subarray(lead, lead + room));
      if (n === 0) break;
      if (pos + n > top.currSize) {
        throw new VhdError(EINVAL, `write of ${n} bytes at ${pos} goes past the virtual size ${top.currSize}`);
      }
      const firstSec = Math.floor(pos / SECTOR);
      const endByte = pos + n;
      const lastSec = Math.ceil(endByte / SECTOR);
      const span = (lastSec - firstSec) * SECTOR;
      const data = buf.subarray(0, span);
      if (lead !== 0) {
        const s = Buffer.alloc(SECTOR);
        chain.read(firstSec, s);
        s.copy(data, 0, 0, lead);
      }
      const tail = endByte % SECTOR;
      if (tail !== 0) {
        const s = Buffer.alloc(SECTOR);
        chain.read(lastSec - 1, s);
        s.copy(data, span - SECTOR + tail, tail);
      }
      top.writeSectors(firstSec, data);
      pos += n;
      total += n;
    }
    return total;
  } finally {
    chain.close();
  }
}

/**
 * Write the chain-resolved content of `path` as raw bytes to `fd`. When `seekable`
 * (a regular file), ranges no image provides are skipped and the file is sized
 * with ftruncate, leaving holes; otherwise zeros are written.
 */
export function exportRaw(path: string, fd: number, seekable: boolean): number {
  const chain = Chain.open(path);
  try {
    const size = chain.top.currSize;
    const buf = Buffer.alloc(BLOCK_SIZE);
    const blocks = Math.ceil(size / BLOCK_SIZE);
    let written = 0;
    for (let b = 0; b < blocks; b++) {
      const start = b * BLOCK_SIZE;
      const len = Math.min(BLOCK_SIZE, size - start);
      const chunk = buf.subarray(0, len);
      if (!chain.blockHasData(b)) {
        if (seekable) continue;
        chunk.fill(0);
      } else {
        chain.read(b * SECTORS_PER_BLOCK, chunk.subarray(0, Math.floor(len / SECTOR) * SECTOR));
      }
      if (seekable) writeFully(fd, chunk, start);
      else writeAll(fd, chunk);
      written += len;
    }
    if (seekable) ftruncateSync(fd, size);
    return written;
  } finally {
    chain.close();
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) {
    try {
      off += writeSync(fd, chunk, off, chunk.length - off);
    } catch (e) {
      if ((e as { code?: string }).code === 'EAGAIN') continue;
      throw e;
    }
  }
}
