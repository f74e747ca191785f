// Copy an image (its whole chain, flattened) into a new image of another format.
// qcow2/raw pairs are one `qemu-img convert -f -O` (sparse). VHD is never handed
// to qemu-img: it cannot read tap differencing chains (spec/vhd-util.md §5). A
// VHD source is flattened with our vhd-util `export`; a VHD target is created by
// vhd-util and filled with `vhd-util write`, only where the source has data.
import { closeSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as qemuImg from '../tools/qemu-img.js';
import { runTool } from '../tools/run.js';
import { asSRError, refuseExisting, removeQuietly } from './common.js';
import { exportRaw, virtualSizeOf } from './content.js';
import { QCOW2_CLUSTER_SIZE } from './qcow2.js';
import { vhdWriteArgv } from './tool-extras.js';
import type { ImageRef } from './types.js';
import { vhdOps } from './vhd.js';

const BLOCK = 2 * 1024 * 1024;
/**
 * At most this many `vhd-util write` calls per conversion: beyond it, the
 * closest data runs are merged (allocating the zero blocks between them).
 */
const MAX_WRITE_CALLS = 64;

function stagingPath(dst: string, tag: string): string {
  return join(dirname(dst), `.${basename(dst)}.${tag}-${randomBytes(4).toString('hex')}`);
}

/** Convert `src` (with its chain) into a new image `dst`; returns `dst`'s virtual size. */
export async function convert(src: ImageRef, dst: ImageRef): Promise<number> {
  refuseExisting(dst.path, dst.format);
  const cleanup: string[] = [];
  try {
    if (src.format !== 'vhd' && dst.format !== 'vhd') {
      await qemuImg.convert({
        source: { path: src.path, format: src.format },
        target: { path: dst.path, format: dst.format },
        ...(dst.format === 'qcow2' ? { options: { cluster_size: QCOW2_CLUSTER_SIZE } } : {}),
      });
      return virtualSizeOf(dst);
    }
    // A raw copy of the flattened source: the raw source itself, or a sparse staging file.
    let flat = src.path;
    if (src.format !== 'raw') {
      flat = stagingPath(dst.path, 'flat');
      cleanup.push(flat);
      await exportRaw(src, flat);
    }
    if (dst.format === 'raw') {
      renameSync(flat, dst.path);
      cleanup.length = 0;
      return virtualSizeOf(dst);
    }
    if (dst.format === 'qcow2') {
      await qemuImg.convert({ source: { path: flat, format: 'raw' }, target: { path: dst.path, format: 'qcow2' }, options: { cluster_size: QCOW2_CLUSTER_SIZE } });
      return virtualSizeOf(dst);
    }
    const size = await vhdOps.create(dst.path, virtualSizeOf({ path: flat, format: 'raw' }));
    await writeDataRuns(flat, dst.path, (tag) => {
      const p = stagingPath(dst.path, tag);
      cleanup.push(p);
      return p;
    });
    return size;
  } catch (e) {
    removeQuietly(dst.path);
    throw asSRError('VDICreate', `converting ${src.format} ${src.path} to ${dst.format} ${dst.path}`, e);
  } finally {
    for (const p of cleanup) removeQuietly(p);
  }
}

/** Runs of 2 MiB blocks holding non-zero bytes, as [startBlock, endBlock), at most `maxRuns` of them. */
export function dataRuns(path: string, maxRuns = MAX_WRITE_CALLS): [number, number][] {
  const fd = openSync(path, 'r');
  let runs: [number, number][] = [];
  try {
    const buf = Buffer.alloc(BLOCK);
    for (let b = 0; ; b++) {
      const n = readSync(fd, buf, 0, BLOCK, b * BLOCK);
      if (n === 0) break;
      if (buf.subarray(0, n).some((x) => x !== 0)) {
        const last = runs[runs.length - 1];
        if (last && last[1] === b) last[1] = b + 1;
        else runs.push([b, b + 1]);
      }
      if (n < BLOCK) break;
    }
  } finally {
    closeSync(fd);
  }
  if (runs.length > maxRuns) {
    // Close the smallest gaps first: merge every gap up to the one that leaves maxRuns runs.
    const gaps = runs.slice(1).map((r, i) => r[0] - runs[i]![1]).sort((a, b) => a - b);
    const limit = gaps[runs.length - maxRuns - 1]!;
    const merged: [number, number][] = [];
    for (const r of runs) {
      const last = merged[merged.length - 1];
      if (last && r[0] - last[1] <= limit) last[1] = r[1];
      else merged.push([r[0], r[1]]);
    }
    runs = merged;
  }
  return runs;
}

async function writeDataRuns(flat: string, vhdPath: string, temp: (tag: string) => string): Promise<void> {
  const runs = dataRuns(flat);
  const src = openSync(flat, 'r');
  try {
    for (const [start, end] of runs) {
      const piece = temp(`run${start}`);
      const out = openSync(piece, 'w', 0o600);
      try {
        const buf = Buffer.alloc(BLOCK);
        for (let b = start; b < end; b++) {
          const n = readSync(src, buf, 0, BLOCK, b * BLOCK);
          if (n === 0) break;
          writeSync(out, buf, 0, n);
        }
      } finally {
        closeSync(out);
      }
      await runTool(vhdWriteArgv({ path: vhdPath, offset: start * BLOCK, input: piece }));
      removeQuietly(piece);
    }
  } finally {
    closeSync(src);
  }
}
