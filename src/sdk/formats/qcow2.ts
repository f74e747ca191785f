// qcow2 images through qemu-img, always with `-f qcow2` and `-F` for backing
// files. Headers (size, backing file, hidden flag) are read in-process from the
// first cluster; the hidden flag is XCP-ng's header extension 0x76617465, so an
// SR written by XCP-ng's qcow2 driver reads the same here and back.
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import * as qemuImg from '../tools/qemu-img.js';
import { qcow2Refs, walkChain } from './chain.js';
import { asSRError, refuseExisting, refuseShrink, removeQuietly } from './common.js';
import { ownValueOfExtensions } from '../image-meta/qcow2-ext.js';
import { readQcow2Header, writeQcow2Hidden, type Qcow2Header } from './qcow2-header.js';
import { checkChainDepth, roundVirtualSize } from './rules.js';
import { storageSize } from './size.js';
import type { CoalesceResult, ImageFormatOps, ImageInfo, ImageRef, ScanRecord } from './types.js';

export const QCOW2_CLUSTER_SIZE = 65536;

/** The backing name stored in a child: relative to the child's directory, so the SR can move. */
export function backingName(childPath: string, parentPath: string): string {
  return relative(dirname(resolve(childPath)), resolve(parentPath));
}

function qcow2Info(path: string): ImageInfo {
  const abs = resolve(path);
  const h = readQcow2Header(abs);
  const refs = qcow2Refs(abs, h);
  return {
    path: abs,
    format: 'qcow2',
    virtualSize: h.virtualSize,
    physicalSize: storageSize(abs),
    parent: refs.parent?.path ?? null,
    parentFormat: refs.parent?.format ?? null,
    hidden: h.hidden,
    ...ownImageMetaOf(h, abs),
  };
}

/** The machine data read along with the header: a scan then needs no second read of each image. */
function ownImageMetaOf(h: Qcow2Header, path: string): Pick<ImageInfo, 'ownImageMeta'> {
  const own = ownValueOfExtensions(h.extensions, path);
  return own === undefined ? {} : { ownImageMeta: own };
}

function qemuFormat(f: ImageFormat): qemuImg.QemuFormat {
  if (f === 'vhd') throw new TypeError('qemu-img cannot follow VHD chains; a qcow2 image never has a VHD backing file');
  return f;
}

export const qcow2Ops: ImageFormatOps = {
  format: 'qcow2',

  async create(path, virtualSize) {
    const size = roundVirtualSize('qcow2', virtualSize);
    refuseExisting(path, 'qcow2');
    try {
      await qemuImg.create({ path, format: 'qcow2', sizeBytes: size, clusterSize: QCOW2_CLUSTER_SIZE });
    } catch (e) {
      removeQuietly(path);
      throw asSRError('VDICreate', `creating qcow2 ${path} of ${size} bytes`, e);
    }
    return size;
  },

  async info(path) {
    return qcow2Info(path);
  },

  async scan(dir) {
    const abs = resolve(dir);
    const out: ScanRecord[] = [];
    for (const name of readdirSync(abs).filter((n) => n.endsWith('.qcow2')).sort()) {
      const path = join(abs, name);
      try {
        out.push({ kind: 'image', info: qcow2Info(path) });
      } catch (e) {
        out.push({ kind: 'error', path, format: 'qcow2', message: (e as Error).message });
      }
    }
    return out;
  },

  async snapshot(parent, childPath) {
    if (parent.format !== 'qcow2' && parent.format !== 'raw') {
      throw new SRError('VDISnapshot', `a qcow2 child cannot have a ${parent.format} parent (${parent.path}); use qcow2 or raw`);
    }
    refuseExisting(childPath, 'qcow2');
    let clusterSize = QCOW2_CLUSTER_SIZE;
    let depth = 1;
    try {
      if (parent.format === 'qcow2') {
        clusterSize = readQcow2Header(parent.path).clusterSize;
        depth = walkChain(parent).length;
      }
    } catch (e) {
      throw asSRError('VDISnapshot', `snapshot of ${parent.path}`, e);
    }
    checkChainDepth('qcow2', depth + 1);
    try {
      await qemuImg.create({
        path: childPath,
        format: 'qcow2',
        backing: { path: backingName(childPath, parent.path), format: qemuFormat(parent.format) },
        clusterSize,
      });
    } catch (e) {
      removeQuietly(childPath);
      throw asSRError('VDISnapshot', `snapshot of ${parent.path} into ${childPath}`, e);
    }
  },

  async resize(path, newSize) {
    const current = readQcow2Header(path).virtualSize;
    refuseShrink(path, current, newSize);
    const size = roundVirtualSize('qcow2', newSize);
    if (size <= current) return current;
    try {
      await qemuImg.resize({ path, format: 'qcow2', sizeBytes: size });
    } catch (e) {
      throw asSRError('VDIResize', `resizing ${path} to ${size} bytes`, e);
    }
    return size;
  },

  async coalesce(childPath): Promise<CoalesceResult> {
    // qemu opens the backing file with the format recorded in the child; without
    // one it would probe, so such images are refused (qcow2Refs throws).
    const refs = qcow2Refs(childPath);
    if (refs.parent === null) throw new SRError('VDIUnavailable', `${childPath} has no backing file to coalesce into`);
    // `-d`: leave the child's clusters in place (like vhd-util coalesce, which
    // never touches the child); without it qemu-img empties the child afterwards.
    await qemuImg.commit({ path: childPath, format: 'qcow2', drop: true });
    return { bytes: null };
  },

  async setParent(childPath, newParent: ImageRef) {
    await qemuImg.rebase({
      path: childPath,
      format: 'qcow2',
      unsafe: true,
      backing: { path: backingName(childPath, newParent.path), format: qemuFormat(newParent.format) },
    });
  },

  async getHidden(path) {
    return readQcow2Header(path).hidden;
  },

  async setHidden(path, hidden) {
    writeQcow2Hidden(path, hidden);
  },

  async chain(path) {
    return walkChain({ path, format: 'qcow2' });
  },
};
