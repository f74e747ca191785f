// Layer 0: where one image's own string lives, behind one interface, chosen
// by format and medium. qcow2 files: our header extension (qcow2-ext.ts),
// changed only under QEMU's image locks. VHD and raw files: a sidecar
// (sidecar.ts). Other media (LVM: LV tags with a metadata-volume fallback)
// plug in with registerStore; until one matches, they are refused clearly.
import { statSync } from 'node:fs';
import type { ImageRef } from '../formats/types.js';
import { ImageMetaError } from './errors.js';
import { imageMetaFist } from './fist.js';
import { qcow2Capacity, readQcow2Own, writeQcow2Own } from './qcow2-ext.js';
import { withQemuWriteLock } from './qemu-lock.js';
import { MAX_VALUE_BYTES } from './rules.js';
import { readSidecar, writeSidecar } from './sidecar.js';

export interface ImageMetaStore {
  /** Shown in dumps and errors: 'qcow2-header', 'sidecar', 'lv-tags', ... */
  readonly kind: string;
  /** The image's own string, or null when it has none (it inherits). */
  read(image: ImageRef): Promise<string | null>;
  /** Replace the own string atomically (old or new after a crash); null removes it (inherit again). */
  write(image: ImageRef, value: string | null): Promise<void>;
  /** Largest string (UTF-8 bytes) this image can hold; never above MAX_VALUE_BYTES. */
  capacity(image: ImageRef): Promise<number>;
}

export const qcow2HeaderStore: ImageMetaStore = {
  kind: 'qcow2-header',
  read: async (image) => readQcow2Own(image.path),
  write: async (image, value) => withQemuWriteLock(image.path, async () => {
    imageMetaFist('image-meta-qcow2-locked');
    writeQcow2Own(image.path, value);
  }),
  capacity: async (image) => qcow2Capacity(image.path),
};

export const sidecarStore: ImageMetaStore = {
  kind: 'sidecar',
  read: async (image) => readSidecar(image.path),
  write: async (image, value) => writeSidecar(image.path, value),
  capacity: async () => MAX_VALUE_BYTES,
};

export interface StoreBackend {
  /** Whether this backend holds the values of `image` (e.g. an LV path). */
  matches(image: ImageRef): boolean;
  store: ImageMetaStore;
}

const extraBackends: StoreBackend[] = [];

/** Add a backend (e.g. LVM); backends registered later are asked first. */
export function registerStore(b: StoreBackend): void {
  extraBackends.unshift(b);
}

export function storeFor(image: ImageRef): ImageMetaStore {
  for (const b of extraBackends) if (b.matches(image)) return b.store;
  let isFile: boolean;
  try {
    isFile = statSync(image.path).isFile();
  } catch (e) {
    throw new ImageMetaError('not-an-image', `${image.path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  if (!isFile) {
    throw new ImageMetaError('unsupported', `${image.path} is not a regular file; machine data for block devices (LVM) needs the LV-tag backend, which is not installed`);
  }
  return image.format === 'qcow2' ? qcow2HeaderStore : sidecarStore;
}
