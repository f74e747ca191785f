// VHD and raw images on file storage keep their string out of band (VHD has
// no in-band spot `vhd-util check` accepts; raw has none at all): a sidecar
// `<image>.image-meta.json` next to the image, holding
// {"format":1,"value":"<the string>"}. No sidecar = no own value.
// Replaced by write-temp (`<sidecar>.tmp-<pid>`), fsync, rename, fsync(dir):
// a reader sees the old file or the new one. The file SR's scan only looks at
// `*.vhd`, `*.qcow2` and `*.raw`, so these names are never taken for VDIs.
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ImageMetaError } from './errors.js';
import { imageMetaFist } from './fist.js';

export const SIDECAR_SUFFIX = '.image-meta.json';

export function sidecarPath(imagePath: string): string {
  return `${resolve(imagePath)}${SIDECAR_SUFFIX}`;
}

const SidecarFile = z.object({ format: z.literal(1), value: z.string() }).strict();

export function readSidecar(imagePath: string): string | null {
  const p = sidecarPath(imagePath);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ImageMetaError('io', `reading ${p}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const r = SidecarFile.safeParse(parsed);
  if (!r.success) throw new ImageMetaError('corrupt', `${p} is not an image-meta sidecar ({"format":1,"value":"..."}); move it aside to clear the value`);
  return r.data.value;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeSidecar(imagePath: string, value: string | null): void {
  const p = sidecarPath(imagePath);
  if (value === null) {
    try {
      unlinkSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new ImageMetaError('io', `removing ${p}: ${(e as Error).message}`, { cause: e });
    }
    fsyncDir(dirname(p));
    return;
  }
  const tmp = `${p}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, `${JSON.stringify({ format: 1, value })}\n`);
      imageMetaFist('image-meta-sidecar-written');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    imageMetaFist('image-meta-sidecar-synced');
    renameSync(tmp, p);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new ImageMetaError('io', `writing ${p}: ${(e as Error).message}`, { cause: e });
  }
  imageMetaFist('image-meta-sidecar-renamed');
  fsyncDir(dirname(p));
}

/** Move an image's sidecar along with the image (rename of the image file), atomically. */
export function renameSidecar(fromImage: string, toImage: string): void {
  try {
    renameSync(sidecarPath(fromImage), sidecarPath(toImage));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  fsyncDir(dirname(sidecarPath(toImage)));
}

/**
 * Give `toImage` the same sidecar as `fromImage` (a hard link: sidecars are
 * only ever replaced by rename, never changed in place, so sharing is safe).
 * Replaces an existing one atomically; no sidecar on `fromImage` = nothing.
 */
export function linkSidecar(fromImage: string, toImage: string): void {
  const to = sidecarPath(toImage);
  const tmp = `${to}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  try {
    linkSync(sidecarPath(fromImage), tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  renameSync(tmp, to);
  fsyncDir(dirname(to));
}

/** Drop an image's sidecar (the image is being deleted). */
export function removeSidecar(imagePath: string): void {
  rmSync(sidecarPath(imagePath), { force: true });
}
