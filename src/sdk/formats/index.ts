// The image-format layer: one ImageFormatOps per format, chosen by data
// (`opsFor(format)`), plus what works across formats: a whole-directory scan,
// checkSafe, convert and the content reader/writer.
import type { ImageFormat } from '../../driver-info.js';
import { qcow2Ops } from './qcow2.js';
import { rawOps } from './raw.js';
import type { ImageFormatOps, ScanRecord } from './types.js';
import { vhdOps } from './vhd.js';
import { scanVhdHeaders } from './vhd-headers.js';

const OPS: Readonly<Record<ImageFormat, ImageFormatOps>> = Object.freeze({ vhd: vhdOps, qcow2: qcow2Ops, raw: rawOps });

export function opsFor(format: ImageFormat): ImageFormatOps {
  const ops = OPS[format];
  if (ops === undefined) throw new TypeError(`no image-format module for ${JSON.stringify(format)}; formats: ${Object.keys(OPS).join(', ')}`);
  return ops;
}

/**
 * Every `*.vhd`, `*.qcow2` and `*.raw` in `dir`: VHDs with one `vhd-util scan`
 * (or, with `vhdHeaders: 'in-process'`, the same reads in this process),
 * qcow2 headers and raw files read in-process. A corrupt image is an `error`
 * record; the others are still returned. Sorted by path.
 */
export async function scanDirectory(
  dir: string,
  formats: readonly ImageFormat[] = ['vhd', 'qcow2', 'raw'],
  o: { vhdHeaders?: 'vhd-util' | 'in-process' } = {},
): Promise<ScanRecord[]> {
  const parts = await Promise.all(formats.map((f) => (f === 'vhd' && o.vhdHeaders === 'in-process' ? scanVhdHeaders(dir) : opsFor(f).scan(dir))));
  const pathOf = (r: ScanRecord) => (r.kind === 'image' ? r.info.path : r.path);
  return parts.flat().sort((a, b) => (pathOf(a) < pathOf(b) ? -1 : pathOf(a) > pathOf(b) ? 1 : 0));
}

export { checkSafe } from './safety.js';
export { convert } from './convert.js';
export { contentSha256, exportRaw, readRange, virtualSizeOf, writeRange } from './content.js';
export { walkChain, ChainError } from './chain.js';
export { qcow2Ops } from './qcow2.js';
export { rawOps, hiddenSidecar } from './raw.js';
export { vhdOps, defaultResizeJournal } from './vhd.js';
export type { CoalesceResult, ImageFormatOps, ImageInfo, ImageRef, ResizeOptions, ScanRecord } from './types.js';
