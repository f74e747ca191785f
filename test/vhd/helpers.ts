// Shared test plumbing: run the real CLI (compiled, as users run it), temp dirs on
// the real disk, a seeded PRNG so failures reproduce, file hashes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VHD_UTIL = join(ROOT, 'bin', 'vhd-util');
export const MiB = 1024 * 1024;

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

export function vhdUtil(args: string[], opts: { cwd?: string; input?: Buffer; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(VHD_UTIL, args, {
    cwd: opts.cwd,
    input: opts.input,
    env: opts.env ?? process.env,
    maxBuffer: 512 * MiB,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString(), raw: r.stdout };
}

/** Run and require exit 0, returning stdout. */
export function ok(args: string[], opts: Parameters<typeof vhdUtil>[1] = {}): string {
  const r = vhdUtil(args, opts);
  if (r.status !== 0) throw new Error(`vhd-util ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join('/var/tmp', `vhd-test-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** mulberry32: small, seeded, good enough for test patterns. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBuffer(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) b.writeUInt32LE(Math.floor(rand() * 0x100000000), i);
  for (; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

export function filled(byte: number, n: number): Buffer {
  return Buffer.alloc(n, byte);
}

export function sha(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(4 * MiB);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export function shaOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export const size = (p: string) => statSync(p).size;

export function readAt(path: string, pos: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, pos);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** VHD checksum: one's complement of the byte sum with the 4-byte field at `skip` zeroed. */
export function checksum(b: Buffer, skip: number): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) if (i < skip || i >= skip + 4) s += b[i]!;
  return ~s >>> 0;
}
