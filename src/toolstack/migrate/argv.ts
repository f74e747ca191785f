// The qemu-img command lines of the copy engine (golden-argv tested). Formats
// are always given (-f / -O / -F): an image's format is never probed.
import type { ImageFormat } from '../../driver-info.js';
import { pathArg } from '../../sdk/tools/args.js';
import { QEMU_IMG } from '../../sdk/tools/qemu-img.js';

/** The two formats qemu-img handles for us; VHD goes through our VHD engine. */
export type QemuSide = Exclude<ImageFormat, 'vhd'>;

function qemuFormat(f: QemuSide): 'raw' | 'qcow2' {
  if (f !== 'raw' && f !== 'qcow2') throw new TypeError(`qemu-img is not used for ${String(f)} images here`);
  return f;
}

/**
 * `qemu-img convert -p -f S -O D -n --target-is-zero SRC DST`: into the target
 * the destination driver created (-n), which is empty, so qemu-img skips every
 * zero / unallocated range instead of writing zeros (--target-is-zero).
 */
export function convertIntoArgv(o: { src: string; srcFormat: QemuSide; dst: string; dstFormat: QemuSide }): string[] {
  return [
    QEMU_IMG, 'convert', '-p',
    '-f', qemuFormat(o.srcFormat), '-O', qemuFormat(o.dstFormat),
    '-n', '--target-is-zero',
    pathArg('convert source', o.src), pathArg('convert target', o.dst),
  ];
}

/** `qemu-img convert -p -f S -O raw SRC OUT`: a new sparse raw file (staging for a VHD target). */
export function convertToRawArgv(o: { src: string; srcFormat: QemuSide; out: string }): string[] {
  return [QEMU_IMG, 'convert', '-p', '-f', qemuFormat(o.srcFormat), '-O', 'raw', pathArg('convert source', o.src), pathArg('convert output', o.out)];
}

/** `qemu-img compare -f A -F B IMG_A IMG_B`: exit 0 same content, 1 different (a larger image's tail must be zeros). */
export function compareArgv(o: { a: string; aFormat: QemuSide; b: string; bFormat: QemuSide }): string[] {
  return [QEMU_IMG, 'compare', '-f', qemuFormat(o.aFormat), '-F', qemuFormat(o.bFormat), pathArg('compare image', o.a), pathArg('compare image', o.b)];
}
