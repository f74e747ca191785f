// Each image format's rules, declared once: size rounding, limits, chain depth.
// Every check that a format allows a size or a chain reads this table, so the
// drivers, the toolstack's migration checks and the conformance suite agree.
import { SRError } from '../errors/sr-error.js';
import type { ImageFormat } from '../../driver-info.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

export interface FormatRules {
  readonly format: ImageFormat;
  /** Virtual sizes are rounded up to a multiple of this. */
  readonly granularity: number;
  /** Smallest virtual size; smaller requests are raised to it. */
  readonly minSize: number;
  /** Largest virtual size the format (as our tools write it) can hold. */
  readonly maxSize: number;
  /** Longest backing chain, counting the image itself (1 = no backing file). */
  readonly maxChainDepth: number;
  /** Whether the format has backing files, so it can hold snapshots itself. */
  readonly copyOnWrite: boolean;
  /** File extension on file-based SRs, as xapi's drivers name files. */
  readonly extension: string;
}

export const FORMAT_RULES: Readonly<Record<ImageFormat, FormatRules>> = Object.freeze({
  // blktap VHD: 2 MiB blocks; sm caps VHDs at 2040 GiB (vhdutil.MAX_VHD_SIZE),
  // below the 2 TiB where 32-bit sector offsets stop; chains of at most 30.
  vhd: { format: 'vhd', granularity: 2 * MiB, minSize: 2 * MiB, maxSize: 2040 * GiB, maxChainDepth: 30, copyOnWrite: true, extension: 'vhd' },
  // qcow2 with 64 KiB clusters, the XCP-ng limits (qcow2util: 16 TiB, chain 30).
  qcow2: { format: 'qcow2', granularity: 64 * KiB, minSize: 64 * KiB, maxSize: 16 * TiB, maxChainDepth: 30, copyOnWrite: true, extension: 'qcow2' },
  // raw: whole 512-byte sectors, no backing files; the limit is the storage's.
  raw: { format: 'raw', granularity: 512, minSize: 512, maxSize: 64 * TiB, maxChainDepth: 1, copyOnWrite: false, extension: 'raw' },
});

export function rulesOf(format: ImageFormat): FormatRules {
  return FORMAT_RULES[format];
}

/** Human form of a byte count for messages: exact, in the largest unit that divides it. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['TiB', TiB], ['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
}

/**
 * The virtual size a new image of `format` gets for a request of `requested`
 * bytes: raised to the minimum, rounded up to the granularity, never down.
 * A size the format cannot hold is refused with VDISize, naming the size, the
 * format's maximum, and (for VHD) the format that can hold it.
 */
export function roundVirtualSize(format: ImageFormat, requested: number): number {
  const r = rulesOf(format);
  if (!Number.isSafeInteger(requested) || requested < 0)
    throw new SRError('VDISize', `virtual size ${requested} is not a whole number of bytes >= 0`);
  const raised = Math.max(requested, r.minSize);
  const rounded = Math.ceil(raised / r.granularity) * r.granularity;
  if (rounded > r.maxSize) throw new SRError('VDISize', tooLargeMessage(format, requested));
  return rounded;
}

export function tooLargeMessage(format: ImageFormat, size: number): string {
  const r = rulesOf(format);
  const bigger = (Object.values(FORMAT_RULES) as FormatRules[]).filter((o) => o.copyOnWrite && o.maxSize >= size && o.format !== format);
  const hint = bigger.length > 0 ? `; use ${bigger.map((o) => o.format).join(' or ')} for disks this large` : '';
  return `virtual size ${size} bytes (${formatBytes(size)}) exceeds the ${format} maximum of ${formatBytes(r.maxSize)}${hint}`;
}

/** Whether an image of `size` bytes fits `format` (after rounding). */
export function fitsFormat(format: ImageFormat, size: number): boolean {
  const r = rulesOf(format);
  return Math.ceil(Math.max(size, r.minSize) / r.granularity) * r.granularity <= r.maxSize;
}

/** Refuses a snapshot/clone that would make the chain longer than the format allows. */
export function checkChainDepth(format: ImageFormat, depthAfter: number): void {
  const r = rulesOf(format);
  if (depthAfter > r.maxChainDepth)
    throw new SRError('SnapshotChainTooLong', `a ${format} chain may be at most ${r.maxChainDepth} deep; this one would be ${depthAfter}`);
}
