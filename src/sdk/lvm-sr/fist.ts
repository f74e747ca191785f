// Fault-injection points of the LVM SR (same mechanism as file-sr/fist.ts:
// `SM_FIST=<point>` SIGKILLs the driver when it reaches <point>).
import { FIST_ENV } from '../file-sr/fist.js';

export const LVM_FIST_POINTS = [
  'lvm-snapshot-journal',
  'lvm-snapshot-rename',
  'lvm-snapshot-leaf',
  'lvm-snapshot-clone',
  'lvm-snapshot-hide',
  'lvm-snapshot-mgt',
  'lvm-resize-journal',
  'lvm-resize-extend',
  'lvm-resize-image',
  // machine data (image-meta.ts): a long value's MGT entry written, tags not yet switched /
  // tags switched (one lvchange), the old MGT entry not yet dropped
  'lvm-image-meta-mgt-put',
  'lvm-image-meta-tags',
  // provisioning (provisioning.ts): inflate at RW attach / deflate at detach and of snapshot bases
  'lvm-inflate-journal',
  'lvm-inflate-extend',
  'lvm-inflate-footer',
  'lvm-deflate-journal',
  'lvm-deflate-footer',
  'lvm-deflate-reduce',
  // GC (gc.ts): coalesce of a hidden node into its parent / of a leaf into its base
  'lvm-coalesce-journal',
  'lvm-coalesce-inflate',
  'lvm-coalesce-merged',
  'lvm-coalesce-relinked',
  'lvm-coalesce-removed',
  'lvm-leaf-coalesce-journal',
  'lvm-leaf-coalesce-merged',
  'lvm-leaf-coalesce-removed',
  'lvm-leaf-coalesce-renamed',
  // GC growing a base for a bigger image: lvextend done; without device-mapper, the base
  // moved to a new contiguous LV: created, copied, renamed away, the new one renamed in
  'lvm-gc-grow-extended',
  'lvm-gc-move-created',
  'lvm-gc-move-copied',
  'lvm-gc-move-renamed-old',
  'lvm-gc-move-renamed-new',
] as const;
export type LvmFistPoint = (typeof LVM_FIST_POINTS)[number];

export function fistPoint(name: LvmFistPoint): void {
  const wanted = process.env[FIST_ENV];
  if (wanted !== undefined && wanted === name) process.kill(process.pid, 'SIGKILL');
}
