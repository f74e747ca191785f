// Walking a backing chain from metadata alone (qcow2 and VHD headers read
// in-process): who is whose parent, in which format, and every path an image's
// metadata mentions. Used by chain(), snapshot depth checks and checkSafe.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isImageFormat, type ImageFormat } from '../../driver-info.js';
import { readQcow2Header, type Qcow2Header } from './qcow2-header.js';
import type { ImageRef } from './types.js';
import { readVhdHeader, type VhdHeaderInfo } from './vhd-header.js';

/** A backing chain we cannot follow (unknown backing format, missing parent, loop). */
export class ChainError extends Error {
  override readonly name = 'ChainError';
}

/** qemu treats `proto:...` and `json:{...}` backing names as protocols, not files. */
export function isProtocolName(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(name) && !name.startsWith('/');
}

export interface ImageMetadataRefs {
  /** The parent this image is opened with, or null. */
  parent: ImageRef | null;
  /** Every path the metadata names (backing file, all VHD locators, qcow2 data-file), as stored and resolved. */
  mentions: { what: string; stored: string; resolved: string | null }[];
}

export function qcow2Refs(path: string, h: Qcow2Header = readQcow2Header(path)): ImageMetadataRefs {
  const dir = dirname(resolve(path));
  const mentions: ImageMetadataRefs['mentions'] = [];
  if (h.dataFile !== null) mentions.push({ what: 'data-file', stored: h.dataFile, resolved: isProtocolName(h.dataFile) ? null : resolve(dir, h.dataFile) });
  if (h.hasExternalData && h.dataFile === null) mentions.push({ what: 'data-file', stored: '(external data file bit set, no name)', resolved: null });
  if (h.backingFile === null) return { parent: null, mentions };
  const resolved = isProtocolName(h.backingFile) ? null : isAbsolute(h.backingFile) ? resolve(h.backingFile) : resolve(dir, h.backingFile);
  mentions.push({ what: 'backing file', stored: h.backingFile, resolved });
  if (resolved === null) throw new ChainError(`${path}: backing file '${h.backingFile}' is not a file path (qemu would open it as a protocol)`);
  const fmt = h.backingFormat;
  if (fmt === null) throw new ChainError(`${path}: backing file ${h.backingFile} has no recorded format; refusing to guess it`);
  if (!isImageFormat(fmt) || fmt === 'vhd') throw new ChainError(`${path}: backing format '${fmt}' is not allowed (qcow2 or raw)`);
  return { parent: { path: resolved, format: fmt }, mentions };
}

export function vhdRefs(path: string, h: VhdHeaderInfo = readVhdHeader(path)): ImageMetadataRefs {
  const mentions: ImageMetadataRefs['mentions'] = h.locators.map((l) => ({ what: `parent locator ${l.code}`, stored: l.stored, resolved: l.resolved }));
  if (h.diskType !== 'differencing') return { parent: null, mentions };
  // As blktap: the first locator naming a file that exists wins.
  const found = h.locators.find((l) => existsSync(l.resolved));
  if (found === undefined) {
    throw new ChainError(`${path}: parent ${h.parentName ?? '?'} not found (locators: ${h.locators.map((l) => l.stored).join(', ') || 'none'})`);
  }
  return { parent: { path: found.resolved, format: h.parentIsRaw ? 'raw' : 'vhd' }, mentions };
}

export function refsOf(ref: ImageRef): ImageMetadataRefs {
  switch (ref.format) {
    case 'qcow2': return qcow2Refs(ref.path);
    case 'vhd': return vhdRefs(ref.path);
    case 'raw': return { parent: null, mentions: [] };
  }
}

/** The image and its ancestors, top first. */
export function walkChain(top: ImageRef, limit = 256): ImageRef[] {
  const out: ImageRef[] = [];
  const seen = new Set<string>();
  let cur: ImageRef | null = { path: resolve(top.path), format: top.format };
  while (cur !== null) {
    if (seen.has(cur.path)) throw new ChainError(`${top.path}: backing chain loops back to ${cur.path}`);
    if (out.length >= limit) throw new ChainError(`${top.path}: backing chain longer than ${limit}`);
    seen.add(cur.path);
    out.push(cur);
    cur = refsOf(cur).parent;
  }
  return out;
}

export function formatOfExtension(name: string): ImageFormat | null {
  const m = /\.([a-z0-9]+)$/.exec(name);
  return m && isImageFormat(m[1]!) ? m[1] : null;
}
