// The one interface every image format implements (vhd.ts, qcow2.ts, raw.ts),
// so a driver asks `opsFor(format)` and never branches on the format itself.
import type { ImageFormat } from '../../driver-info.js';

/** An image file and the format it must be opened as: formats are never guessed. */
export interface ImageRef {
  path: string;
  format: ImageFormat;
}

export interface ImageInfo {
  /** Absolute path of the image. */
  path: string;
  format: ImageFormat;
  /** Virtual size in bytes. */
  virtualSize: number;
  /** Bytes the image occupies on its storage (file length; allocated blocks for sparse raw). */
  physicalSize: number;
  /** Absolute path of the immediate parent (backing file), or null. */
  parent: string | null;
  /** The parent's format, or null when there is no parent. */
  parentFormat: ImageFormat | null;
  /**
   * Hidden (a snapshot base the toolstack must not show): the VHD footer flag,
   * the qcow2 header extension 0x76617465 (XCP-ng's), or for raw the sidecar
   * file `<path>.hidden` (raw has no header to keep it in).
   */
  hidden: boolean;
  /**
   * The image's own machine-data string (image-meta), when the header read
   * already held it: qcow2 keeps it in a header extension (null: no own
   * value). Absent when the scan did not see it (VHD and raw keep it in a
   * sidecar file, or the extension could not be decoded): ask the store.
   */
  ownImageMeta?: string | null;
}

export type ScanRecord =
  | { kind: 'image'; info: ImageInfo }
  /** One unreadable image: reported, never fatal to the scan. */
  | { kind: 'error'; path: string; format: ImageFormat; message: string };

export interface ResizeOptions {
  /** VHD only: the resize journal (default `<dir>/.journal-<name without .vhd>`, as sm's FileSR). */
  journal?: string;
}

export interface CoalesceResult {
  /** Bytes copied into the parent, when the tool reports it (vhd-util). */
  bytes: number | null;
}

export interface ImageFormatOps {
  readonly format: ImageFormat;
  /** Create an empty image; returns the virtual size it got (rounded up by rules.ts). */
  create(path: string, virtualSize: number): Promise<number>;
  info(path: string): Promise<ImageInfo>;
  /** Every image of this format in `dir` (by extension), headers read in one pass. */
  scan(dir: string): Promise<ScanRecord[]>;
  /** A new empty child of this format on top of `parent` (same format, or raw). */
  snapshot(parent: ImageRef, childPath: string): Promise<void>;
  /** Grow only; returns the new virtual size. Shrinking is VDISize. */
  resize(path: string, newSize: number, opts?: ResizeOptions): Promise<number>;
  /** Merge `childPath` into its immediate parent; the child itself is left as it was. */
  coalesce(childPath: string): Promise<CoalesceResult>;
  /** Point `childPath` at another parent, rewriting metadata only (no data moves). */
  setParent(childPath: string, newParent: ImageRef): Promise<void>;
  getHidden(path: string): Promise<boolean>;
  setHidden(path: string, hidden: boolean): Promise<void>;
  /** The image and its ancestors, top first, read from metadata (no process). */
  chain(path: string): Promise<ImageRef[]>;
}
