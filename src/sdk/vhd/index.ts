// Public API of the VHD engine (blktap-compatible). The vhd-util CLI imports the
// modules it needs directly, to keep its start-up short; other code can use this.
export { VhdFile, sizeOfFd, type OpenOptions } from './vhd-file.js';
export { Chain, RawImage, chainDepth, parentIsRaw } from './chain.js';
export { createVhd, snapshotVhd, roundedSizeBytes, type CreateOptions, type SnapshotOptions } from './create.js';
export { coalesce, setHidden, setMarker, repair, setParent, setPhysicalSize, killData, type CoalesceOptions } from './ops.js';
export { resizeJournaled, resizeFast, revertFromJournal } from './resize.js';
export { checkOne, CheckFailure, type CheckOptions } from './check.js';
export { scanTargets, formatScanLine, formatPretty, type ScanOptions, type ScanResult } from './scan.js';
export { scanVolumeGroup } from './lvm-scan.js';
export { writeBytes, exportRaw, fdSource, type ByteSource } from './data-io.js';
export { resolveParent, rawParentLocator, relativeParentPath } from './locators.js';
export { dumpVhd } from './dump.js';
export { VhdError, errnoOf } from './errors.js';
export * as format from './format.js';
