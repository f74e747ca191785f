// Small helpers the per-format modules share.
import { existsSync, rmSync } from 'node:fs';
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import { ToolError } from '../tools/run.js';
import { ChainError } from './chain.js';
import { Qcow2HeaderError } from './qcow2-header.js';
import { VhdHeaderError } from './vhd-header.js';

/** Turn a tool failure into the SRError the toolstack sees, keeping the tool's message (command, exit code, stderr). */
export function asSRError(key: string, what: string, e: unknown): unknown {
  if (e instanceof SRError) return e;
  if (e instanceof ToolError) return new SRError(key, `${what}: ${e.message}`, { cause: e });
  // Unreadable metadata (a corrupt header, a broken or unsafe chain): the message names the image.
  if (e instanceof ChainError || e instanceof Qcow2HeaderError || e instanceof VhdHeaderError) return new SRError(key, `${what}: ${e.message}`, { cause: e });
  return e;
}

/** Tools overwrite existing files silently (vhd-util create, qemu-img create); we never do. */
export function refuseExisting(path: string, format: ImageFormat): void {
  if (existsSync(path)) throw new SRError('VDIExists', `cannot create ${format} image ${path}: the file already exists`);
}

export function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // best effort: the caller reports the original failure
  }
}

export function refuseShrink(path: string, current: number, requested: number): void {
  if (requested < current) {
    throw new SRError('VDISize', `shrinking is not allowed: ${path} is ${current} bytes, requested ${requested} bytes`);
  }
}
