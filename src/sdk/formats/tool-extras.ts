// Argv builders for the tool calls the format layer needs that src/sdk/tools/
// does not wrap (yet): our vhd-util's `export`/`write` extensions, chain reads
// with `read -R`, `qemu-io` writes and `qemu-img dd` range reads. They run
// through tools/run.ts like every other tool call (recorded, ToolError on
// failure). Candidates to move into tools/vhd-util.ts and tools/qemu-img.ts.
// `export`/`write` exist only in our vhd-util, so they always run ours
// (vhdUtilExtensionsPath), even where blktap's vhd-util does everything else.
import { vhdUtilExtensionsPath, vhdUtilPath } from '../env.js';
import { intArg, oneOf, pathArg } from '../tools/args.js';
import { QEMU_FORMATS, type QemuFormat } from '../tools/qemu-img.js';

export const QEMU_IO = 'qemu-io';

/** `vhd-util export -n P -o OUT`: the chain-resolved disk as a sparse raw file (smapi-ts extension). */
export function vhdExportArgv(o: { path: string; output: string }): string[] {
  return [vhdUtilExtensionsPath(), 'export', '-n', pathArg('export path', o.path), '-o', pathArg('export output', o.output)];
}

/** `vhd-util write -n P -o OFFSET -f FILE`: write FILE's bytes at OFFSET (smapi-ts extension). */
export function vhdWriteArgv(o: { path: string; offset: number; input: string }): string[] {
  return [vhdUtilExtensionsPath(), 'write', '-n', pathArg('write path', o.path), '-o', intArg('write offset', o.offset), '-f', pathArg('write input', o.input)];
}

/** `vhd-util read -n P -R BYTE -c COUNT`: chain-resolved bytes to stdout (blktap's read). */
export function vhdReadBytesArgv(o: { path: string; offset: number; length: number }): string[] {
  return [vhdUtilPath(), 'read', '-n', pathArg('read path', o.path), '-R', intArg('read offset', o.offset), '-c', intArg('read length', o.length, { min: 1 })];
}

/** `qemu-io -f FMT -c 'write -q -s FILE OFF LEN' IMAGE`: write FILE's bytes into the image (qcow2/raw only, never VHD). */
export function qemuIoWriteFileArgv(o: { path: string; format: QemuFormat; offset: number; length: number; input: string }): string[] {
  const f = oneOf('qemu-io format', o.format, QEMU_FORMATS);
  if (f === 'vpc') throw new TypeError('qemu-io must not write into VHDs: it corrupts blktap images (spec/vhd-util.md §5)');
  const input = pathArg('qemu-io input', o.input);
  // qemu-io splits the -c string on spaces; a path with spaces or quotes cannot pass.
  if (/[\s'"\\]/.test(input)) throw new TypeError(`qemu-io input path ${JSON.stringify(input)} must not contain spaces or quotes`);
  const cmd = `write -q -s ${input} ${intArg('qemu-io offset', o.offset)} ${intArg('qemu-io length', o.length, { min: 1 })}`;
  return [QEMU_IO, '-f', f, '-c', cmd, pathArg('qemu-io image', o.path)];
}

/**
 * `qemu-img dd -f FMT -O raw bs=B skip=S count=C if=IMAGE of=OUT`. qemu-img's
 * `count` counts from the start of the image, not from `skip`, so the output
 * holds blocks [skip, count).
 */
export function qemuImgDdArgv(o: { path: string; format: QemuFormat; blockSize: number; skip: number; count: number; output: string }): string[] {
  const image = pathArg('dd input', o.path);
  const out = pathArg('dd output', o.output);
  return [
    'qemu-img', 'dd', '-f', oneOf('dd format', o.format, QEMU_FORMATS), '-O', 'raw',
    `bs=${intArg('dd block size', o.blockSize, { min: 512 })}`,
    `skip=${intArg('dd skip', o.skip)}`,
    `count=${intArg('dd count', o.count, { min: 1 })}`,
    `if=${image}`, `of=${out}`,
  ];
}
