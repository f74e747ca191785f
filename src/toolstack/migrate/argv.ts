// The qemu-img command lines of the copy engine (golden-argv tested). Formats
// are always given (-f / -O / -F): an image's format is never probed.
import type { ImageFormat } from '../../driver-info.js';
import { intArg, pathArg } from '../../sdk/tools/args.js';
import { QEMU_IMG } from '../../sdk/tools/qemu-img.js';

/** The two formats qemu-img handles for us; VHD goes through our VHD engine. */
export type QemuSide = Exclude<ImageFormat, 'vhd'>;

function qemuFormat(f: QemuSide): 'raw' | 'qcow2' {
  if (f !== 'raw' && f !== 'qcow2') throw new TypeError(`qemu-img is not used for ${String(f)} images here`);
  return f;
}

/**
 * A raw image read only up to `size` bytes, as a qemu `--image-opts` string: a
 * raw LV is a whole number of 4 MiB extents, longer than its VDI, and qemu-img
 * refuses a source longer than the target (and compares the tail too).
 */
export function rawWindowOpts(what: string, path: string, size: number): string {
  const p = pathArg(what, path);
  // --image-opts splits on ',' (an escaped ',,' would do, but no SR path has one).
  if (p.includes(',')) throw new TypeError(`${what}: path ${JSON.stringify(p)} must not contain ',' (qemu option syntax)`);
  return `driver=raw,size=${intArg(`${what} size`, size, { min: 512, multipleOf: 512 })},file.filename=${p}`;
}

/**
 * `qemu-img convert -p -f S -O D -n --target-is-zero SRC DST`: into the target
 * the destination driver created (-n), which is empty, so qemu-img skips every
 * zero / unallocated range instead of writing zeros (--target-is-zero).
 * With `srcSize` (a raw source on a block device longer than the VDI) the
 * source is `--image-opts driver=raw,size=N,file.filename=SRC` instead of `-f raw SRC`.
 */
export function convertIntoArgv(o: { src: string; srcFormat: QemuSide; srcSize?: number; dst: string; dstFormat: QemuSide }): string[] {
  const dstFormat = qemuFormat(o.dstFormat);
  const target = ['-n', '--target-is-zero'];
  if (o.srcSize !== undefined) {
    if (qemuFormat(o.srcFormat) !== 'raw') throw new TypeError(`convert: srcSize is only for raw sources, not ${o.srcFormat}`);
    return [QEMU_IMG, 'convert', '-p', '--image-opts', '-O', dstFormat, ...target, rawWindowOpts('convert source', o.src, o.srcSize), pathArg('convert target', o.dst)];
  }
  return [
    QEMU_IMG, 'convert', '-p',
    '-f', qemuFormat(o.srcFormat), '-O', dstFormat,
    ...target,
    pathArg('convert source', o.src), pathArg('convert target', o.dst),
  ];
}

/** `qemu-img convert -p -f S -O raw SRC OUT`: a new sparse raw file (staging for a VHD target). */
export function convertToRawArgv(o: { src: string; srcFormat: QemuSide; out: string }): string[] {
  return [QEMU_IMG, 'convert', '-p', '-f', qemuFormat(o.srcFormat), '-O', 'raw', pathArg('convert source', o.src), pathArg('convert output', o.out)];
}

/**
 * `qemu-img compare -f A -F B IMG_A IMG_B`: exit 0 same content, 1 different (a
 * larger image's tail must be zeros). When either side is a raw image read only
 * up to a size (`aSize`/`bSize`: a raw LV longer than its VDI), both are given
 * as `--image-opts` strings.
 */
export function compareArgv(o: { a: string; aFormat: QemuSide; aSize?: number; b: string; bFormat: QemuSide; bSize?: number }): string[] {
  if (o.aSize === undefined && o.bSize === undefined)
    return [QEMU_IMG, 'compare', '-f', qemuFormat(o.aFormat), '-F', qemuFormat(o.bFormat), pathArg('compare image', o.a), pathArg('compare image', o.b)];
  const opts = (path: string, format: QemuSide, size: number | undefined): string => {
    if (size !== undefined) {
      if (qemuFormat(format) !== 'raw') throw new TypeError(`compare: a size limit is only for raw images, not ${format}`);
      return rawWindowOpts('compare image', path, size);
    }
    const p = pathArg('compare image', path);
    if (p.includes(',')) throw new TypeError(`compare image: path ${JSON.stringify(p)} must not contain ',' (qemu option syntax)`);
    return `driver=${qemuFormat(format)},file.filename=${p}`;
  };
  return [QEMU_IMG, 'compare', '--image-opts', opts(o.a, o.aFormat, o.aSize), opts(o.b, o.bFormat, o.bSize)];
}

/**
 * `setpriv --pdeathsig KILL -- ARGV…`: the kernel kills the command when the
 * process that started it dies. A killed smctl must not leave qemu-img writing
 * into a destination that the journal's recovery is about to delete: on LVM the
 * freed extents can already belong to another LV.
 */
export function diesWithParentArgv(argv: readonly string[]): string[] {
  if (argv.length === 0) throw new TypeError('diesWithParentArgv: no command');
  return ['setpriv', '--pdeathsig', 'KILL', '--', ...argv];
}
