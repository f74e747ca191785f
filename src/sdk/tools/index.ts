// Typed wrappers over the external storage tools. Import a tool as a namespace:
//   import { qemuImg, vhdUtil, lvm } from '../tools/index.js';
export * as qemuImg from './qemu-img.js';
export * as vhdUtil from './vhd-util.js';
export * as lvm from './lvm.js';
export * as mount from './mount.js';
export * as mkfs from './mkfs.js';
export * as fsck from './fsck.js';
export * as blkdiscard from './blkdiscard.js';
export * as nfs from './nfs.js';
export { ToolError, formatCommand, onToolCall, recordToolCalls, runTool, runToolBinary } from './run.js';
export type { RetryPolicy, RunOptions, ToolCall, ToolErrorKind, ToolOutput } from './run.js';
