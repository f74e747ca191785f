// Which format an image file is, for the tool (`bin/image-meta IMAGE`): qcow2
// and VHD are recognised by their signatures; raw has none, so a file is
// taken as raw only when it is named `*.raw`/`*.img` or the caller says so.
// Anything else is "not an image" and nothing is touched.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isImageFormat, type ImageFormat } from '../../driver-info.js';
import { QCOW2_MAGIC } from '../formats/qcow2-header.js';
import { ImageMetaError } from './errors.js';

const VHD_COOKIE = Buffer.from('conectix');

function sniff(path: string): ImageFormat | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new ImageMetaError('not-an-image', `cannot open ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new ImageMetaError('not-an-image', `${path} is a directory, not a disk image`);
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, 512, 0);
    if (n >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC) return 'qcow2';
    if (n >= 8 && head.subarray(0, 8).equals(VHD_COOKIE)) return 'vhd';
    if (st.isFile() && st.size >= 512) {
      const tail = Buffer.alloc(8);
      readSync(fd, tail, 0, 8, st.size - 512);
      if (tail.equals(VHD_COOKIE)) return 'vhd'; // fixed VHD: footer only at the end
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The format of `path`; `declared` (e.g. --format) must agree with the signature found. */
export function detectFormat(path: string, declared?: string): ImageFormat {
  if (declared !== undefined && !isImageFormat(declared)) {
    throw new ImageMetaError('unsupported', `format ${JSON.stringify(declared)} is not supported; use qcow2, vhd or raw`);
  }
  const found = sniff(path);
  if (declared !== undefined) {
    if (found !== null && found !== declared) throw new ImageMetaError('not-an-image', `${path} is a ${found} image, not ${declared}`);
    if (found === null && declared !== 'raw') throw new ImageMetaError('not-an-image', `${path} is not a ${declared} image (no ${declared} signature)`);
    return declared;
  }
  if (found !== null) return found;
  if (/\.(raw|img)$/.test(path)) return 'raw';
  throw new ImageMetaError('not-an-image', `${path} is not a qcow2 or VHD image (no signature found); if it is a raw disk image, name it *.raw or pass --format raw`);
}
