// The copy engine: the content of one attached image (with its chain) into an
// empty image the destination driver created, in another format, then a
// verification that both read the same.
//
//   raw/qcow2 -> raw/qcow2   qemu-img convert -n --target-is-zero (one pass, holes skipped)
//   vhd -> raw               our VHD engine, in-process: allocated blocks only
//   vhd -> vhd               our VHD engine, in-process: allocated blocks only
//   vhd -> qcow2             VHD engine -> sparse raw staging -> qemu-img convert
//   raw -> vhd               in-process: non-zero 2 MiB blocks only
//   qcow2 -> vhd             qemu-img convert -> sparse raw staging -> in-process
//
// VHD never goes through qemu-img: qemu cannot follow tap VHD chains and its
// vpc driver misreads tap images (spec/vhd-util.md §5). Zero blocks are never
// written into the target, so it stays as sparse as the source.
//
// Either end may be a block device (an LV the lvm driver attached): sizes come
// from sysfs by device number (fstat says 0), nothing is truncated, and a raw
// device is read only up to the VDI's virtual size (an LV is a whole number of
// extents, longer than its VDI). Skipping zeros relies on the target reading
// as zeros where nothing is written: true of a fresh qcow2/VHD on any medium
// (unallocated reads as zeros), of a new sparse raw file, and of a raw LV the
// lvm driver zeroed at vdi_create (blkdiscard --zeroout). A target that breaks
// this fails the verification that ends every copy; it is never accepted.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { ImageFormat } from '../../driver-info.js';
import { ToolError } from '../../sdk/tools/run.js';
import { Chain } from '../../sdk/vhd/chain.js';
import { BLOCK_SIZE, SECTOR, isZero } from '../../sdk/vhd/format.js';
import { sizeOfFd } from '../../sdk/vhd/vhd-file.js';
import { compareArgv, convertIntoArgv, convertToRawArgv, diesWithParentArgv, type QemuSide } from './argv.js';

export interface ImageEnd {
  path: string;
  format: ImageFormat;
}

/** Bytes done / total, called often; `phase` says which pass runs. */
export type ProgressFn = (phase: 'copy' | 'stage' | 'verify', done: number, total: number) => void;

export interface CopyOptions {
  progress?: ProgressFn;
  /** Where a staging raw file may be written (same file system as the target is best). */
  stagingPath: string;
}

const BASE_ENV = { LC_ALL: 'C' };

/** Runs a qemu-img with -p, turning its "(x.xx/100%)" lines into progress calls. */
let pdeathsig: boolean | undefined;

/** Whether this host's setpriv has --pdeathsig (util-linux 2.33 and later; older dom0s lack it). */
function setprivHasPdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8', env: { ...process.env, ...BASE_ENV } });
    pdeathsig = r.status === 0 && String(r.stdout).includes('--pdeathsig');
  }
  return pdeathsig;
}

/**
 * Runs a qemu-img command, reporting its -p percentages. It is tied to this
 * process (setpriv --pdeathsig KILL, where the host's setpriv has it): a killed
 * smctl leaves no qemu-img writing into a destination about to be removed.
 */
export function runWithProgress(argv: string[], onPercent?: (pct: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = setprivHasPdeathsig() ? diesWithParentArgv(argv) : argv;
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...BASE_ENV } });
    let stderr = '';
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout = (stdout + chunk).slice(-4096);
      const all = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
      const last = all[all.length - 1];
      if (last && onPercent) onPercent(Number(last[1]));
    });
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.on('error', (e) => reject(new ToolError({ command: argv, exitCode: null, stdout: '', stderr: e.message, kind: 'spawn' })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new ToolError({
            command: argv,
            exitCode: code,
            stdout,
            stderr,
            ...(signal ? { kind: 'signal' as const, reason: `killed by ${signal}` } : {}),
          }),
        );
    });
  });
}

// ---- block access -------------------------------------------------------------

/** A disk read in 2 MiB blocks: `hasData(b)` false means the block reads as zeros. */
interface BlockReader {
  readonly size: number;
  hasData(block: number): boolean;
  /** Fills `buf` (already sized for the block) with block `block`'s bytes. */
  read(block: number, buf: Buffer): void;
  close(): void;
}

function vhdReader(path: string): BlockReader {
  const chain = Chain.open(path);
  return {
    size: chain.top.currSize,
    hasData: (b) => chain.blockHasData(b),
    read: (b, buf) => chain.read((b * BLOCK_SIZE) / SECTOR, buf),
    close: () => chain.close(),
  };
}

/**
 * The bytes of a raw image: a file's length, or of a block device the first
 * `virtualSize` bytes when given (the rest of an LV is not the VDI's).
 */
function rawReader(path: string, virtualSize?: number): BlockReader {
  const fd = openSync(path, 'r');
  let size: number;
  try {
    size = rawSize(fd, path, virtualSize);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return {
    size,
    hasData: () => true,
    read: (b, buf) => {
      buf.fill(0);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, b * BLOCK_SIZE + got);
        if (n === 0) break;
        got += n;
      }
    },
    close: () => closeSync(fd),
  };
}

function rawSize(fd: number, path: string, virtualSize: number | undefined): number {
  const si = sizeOfFd(fd, path);
  return si.isBlock && virtualSize !== undefined ? Math.min(si.size, virtualSize) : si.size;
}

/** The size a raw block device is read as, when it is longer than the VDI (else undefined: read it all). */
function rawWindow(end: ImageEnd, virtualSize: number): number | undefined {
  if (end.format !== 'raw') return undefined;
  const fd = openSync(end.path, 'r');
  try {
    const si = sizeOfFd(fd, end.path);
    return si.isBlock && si.size > virtualSize ? virtualSize : undefined;
  } finally {
    closeSync(fd);
  }
}

function readerFor(end: ImageEnd, virtualSize?: number): BlockReader {
  if (end.format === 'vhd') return vhdReader(end.path);
  if (end.format === 'raw') return rawReader(end.path, virtualSize);
  throw new TypeError(`no in-process reader for ${end.format}`);
}

/** Length of block `b` of a disk of `size` bytes. */
function blockLen(size: number, b: number): number {
  return Math.min(BLOCK_SIZE, size - b * BLOCK_SIZE);
}

/**
 * Copies `src` block by block into the empty `dst` (vhd or raw), writing only
 * blocks that hold non-zero bytes. The target must be at least as large.
 */
function copyBlocks(src: BlockReader, dst: ImageEnd, progress?: (done: number, total: number) => void): void {
  const blocks = Math.ceil(src.size / BLOCK_SIZE);
  const buf = Buffer.alloc(BLOCK_SIZE);
  if (dst.format === 'vhd') {
    const chain = Chain.open(dst.path, { write: true });
    try {
      if (chain.top.currSize < src.size) throw new RangeError(`target ${dst.path} (${chain.top.currSize} bytes) is smaller than the source (${src.size} bytes)`);
      for (let b = 0; b < blocks; b++) {
        if (src.hasData(b)) {
          const len = blockLen(src.size, b);
          // The VHD engine writes whole sectors; a partial last sector is zero-padded.
          const chunk = buf.subarray(0, Math.ceil(len / SECTOR) * SECTOR);
          src.read(b, chunk);
          if (!isZero(chunk)) chain.top.writeSectors((b * BLOCK_SIZE) / SECTOR, chunk);
        }
        if (progress && (b & 15) === 0) progress(b * BLOCK_SIZE, src.size);
      }
    } finally {
      chain.close();
    }
  } else if (dst.format === 'raw') {
    const fd = openSync(dst.path, 'r+');
    try {
      // Never past the end: a block device cannot grow, and a short one is refused here.
      const dstSize = sizeOfFd(fd, dst.path).size;
      if (dstSize < src.size) throw new RangeError(`target ${dst.path} (${dstSize} bytes) is smaller than the source (${src.size} bytes)`);
      for (let b = 0; b < blocks; b++) {
        if (src.hasData(b)) {
          const chunk = buf.subarray(0, blockLen(src.size, b));
          src.read(b, chunk);
          if (!isZero(chunk)) writeFully(fd, chunk, b * BLOCK_SIZE);
        }
        if (progress && (b & 15) === 0) progress(b * BLOCK_SIZE, src.size);
      }
    } finally {
      closeSync(fd);
    }
  } else {
    throw new TypeError(`copyBlocks: no in-process writer for ${dst.format}`);
  }
  progress?.(src.size, src.size);
}

function writeFully(fd: number, buf: Buffer, pos: number): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, pos + off);
}

/** A new sparse raw file holding `src` (a VHD chain), holes where the chain has no data. */
function stageVhdAsRaw(src: string, out: string, progress?: (done: number, total: number) => void): void {
  const reader = vhdReader(src);
  try {
    const fd = openSync(out, 'wx', 0o600);
    try {
      ftruncateSync(fd, reader.size);
    } finally {
      closeSync(fd);
    }
    copyBlocks(reader, { path: out, format: 'raw' }, progress);
  } finally {
    reader.close();
  }
}

/** Do two in-process-readable disks read the same? The longer one's tail must be zeros. */
function sameBlocks(a: BlockReader, b: BlockReader, progress?: (done: number, total: number) => void): string | null {
  const size = Math.max(a.size, b.size);
  const blocks = Math.ceil(size / BLOCK_SIZE);
  const ba = Buffer.alloc(BLOCK_SIZE);
  const bb = Buffer.alloc(BLOCK_SIZE);
  const blockOf = (r: BlockReader, blk: number, buf: Buffer): Buffer => {
    if (blk * BLOCK_SIZE >= r.size) return buf.fill(0);
    const len = Math.min(BLOCK_SIZE, r.size - blk * BLOCK_SIZE);
    const chunk = buf.subarray(0, Math.ceil(len / SECTOR) * SECTOR);
    if (r.hasData(blk)) r.read(blk, chunk);
    else chunk.fill(0);
    buf.fill(0, len);
    return buf;
  };
  for (let blk = 0; blk < blocks; blk++) {
    const inA = blk * BLOCK_SIZE < a.size && a.hasData(blk);
    const inB = blk * BLOCK_SIZE < b.size && b.hasData(blk);
    if (inA || inB) {
      const x = blockOf(a, blk, ba);
      const y = blockOf(b, blk, bb);
      if (!x.equals(y)) {
        for (let i = 0; i < BLOCK_SIZE; i++) if (x[i] !== y[i]) return `first difference at byte ${blk * BLOCK_SIZE + i}`;
      }
    }
    if (progress && (blk & 15) === 0) progress(blk * BLOCK_SIZE, size);
  }
  progress?.(size, size);
  return null;
}

function compareInProcess(a: ImageEnd, b: ImageEnd, virtualSize: number, progress?: (done: number, total: number) => void): string | null {
  const ra = readerFor(a, virtualSize);
  try {
    const rb = readerFor(b, virtualSize);
    try {
      return sameBlocks(ra, rb, progress);
    } finally {
      rb.close();
    }
  } finally {
    ra.close();
  }
}

async function qemuCompare(a: ImageEnd, b: ImageEnd, virtualSize: number): Promise<string | null> {
  const aSize = rawWindow(a, virtualSize);
  const bSize = rawWindow(b, virtualSize);
  try {
    await runWithProgress(
      compareArgv({
        a: a.path, aFormat: a.format as QemuSide, b: b.path, bFormat: b.format as QemuSide,
        ...(aSize !== undefined ? { aSize } : {}), ...(bSize !== undefined ? { bSize } : {}),
      }),
    );
    return null;
  } catch (e) {
    if (e instanceof ToolError && e.exitCode === 1) return e.stdout.trim() || 'content differs';
    throw e;
  }
}

export class VerifyError extends Error {
  override name = 'VerifyError';
}

function pctTo(progress: ProgressFn | undefined, phase: 'copy' | 'stage' | 'verify', total: number): ((pct: number) => void) | undefined {
  return progress ? (pct) => progress(phase, Math.round((pct / 100) * total), total) : undefined;
}

/**
 * Copies the content of `src` (its whole chain) into the empty image `dst` and
 * verifies it. Throws VerifyError when the two do not read the same. The
 * staging file (only for vhd <-> qcow2) is the caller's to remove.
 */
export async function copyImage(src: ImageEnd, dst: ImageEnd, sizeBytes: number, o: CopyOptions): Promise<void> {
  const p = o.progress;
  const step = (phase: 'copy' | 'stage' | 'verify') => (p ? (d: number, t: number) => p(phase, d, t) : undefined);
  let differs: string | null;
  if (src.format !== 'vhd' && dst.format !== 'vhd') {
    const srcSize = rawWindow(src, sizeBytes);
    await runWithProgress(
      convertIntoArgv({ src: src.path, srcFormat: src.format, dst: dst.path, dstFormat: dst.format, ...(srcSize !== undefined ? { srcSize } : {}) }),
      pctTo(p, 'copy', sizeBytes),
    );
    p?.('verify', 0, sizeBytes);
    differs = await qemuCompare(src, dst, sizeBytes);
  } else if (src.format === 'vhd' && dst.format !== 'qcow2') {
    const reader = vhdReader(src.path);
    try {
      copyBlocks(reader, dst, step('copy'));
    } finally {
      reader.close();
    }
    differs = compareInProcess(src, dst, sizeBytes, step('verify'));
  } else if (src.format === 'vhd') {
    // vhd -> qcow2: the VHD flattened into a sparse raw, which qemu-img converts.
    const staging: ImageEnd = { path: o.stagingPath, format: 'raw' };
    stageVhdAsRaw(src.path, staging.path, step('stage'));
    await runWithProgress(convertIntoArgv({ src: staging.path, srcFormat: 'raw', dst: dst.path, dstFormat: 'qcow2' }), pctTo(p, 'copy', sizeBytes));
    differs = compareInProcess(src, staging, sizeBytes, step('verify')) ?? (await qemuCompare(staging, dst, sizeBytes));
  } else if (src.format === 'raw') {
    const reader = rawReader(src.path, sizeBytes);
    try {
      copyBlocks(reader, dst, step('copy'));
    } finally {
      reader.close();
    }
    differs = compareInProcess(src, dst, sizeBytes, step('verify'));
  } else {
    // qcow2 -> vhd: qemu-img flattens the qcow2 chain into a sparse raw, our engine fills the VHD.
    const staging: ImageEnd = { path: o.stagingPath, format: 'raw' };
    await runWithProgress(convertToRawArgv({ src: src.path, srcFormat: 'qcow2', out: staging.path }), pctTo(p, 'stage', sizeBytes));
    const reader = rawReader(staging.path);
    try {
      copyBlocks(reader, dst, step('copy'));
    } finally {
      reader.close();
    }
    differs = (await qemuCompare(src, staging, sizeBytes)) ?? compareInProcess(staging, dst, sizeBytes, step('verify'));
  }
  if (differs !== null) throw new VerifyError(`verification failed: ${src.format} ${src.path} and ${dst.format} ${dst.path} differ (${differs})`);
}
