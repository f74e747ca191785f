// Kill points for crash tests of a value update, on the same switch as the
// file-SR driver's (`SM_FIST=<point>`, see src/sdk/file-sr/fist.ts): the
// process SIGKILLs itself there, after the real writes before that point.
export const IMAGE_META_FIST_POINTS = [
  // sidecar (vhd, raw): temp file written / fsynced / renamed over the old one
  'image-meta-sidecar-written',
  'image-meta-sidecar-synced',
  'image-meta-sidecar-renamed',
  // qcow2 slot update: locks held / half of the new slot written (a torn write) / slot written and synced
  'image-meta-qcow2-locked',
  'image-meta-qcow2-slot-torn',
  'image-meta-qcow2-slot-written',
  // qcow2 first write (adding the extension): backing name copied / pointer moved / body written / linked
  'image-meta-qcow2-create-name',
  'image-meta-qcow2-create-pointer',
  'image-meta-qcow2-create-body',
  'image-meta-qcow2-create-linked',
] as const;
export type ImageMetaFistPoint = (typeof IMAGE_META_FIST_POINTS)[number];

export function imageMetaFist(point: ImageMetaFistPoint): void {
  if (process.env['SM_FIST'] === point) process.kill(process.pid, 'SIGKILL');
}

export function fistIs(point: ImageMetaFistPoint): boolean {
  return process.env['SM_FIST'] === point;
}
