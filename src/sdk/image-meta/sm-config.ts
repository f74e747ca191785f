// How a driver reports a VDI's machine data in the VDI record: sm_config
// `image-meta` (the effective string) and `image-meta-from` (the VDI it comes
// from). The two are always written together, so `image-meta-from` marks an
// `image-meta` key as the driver's report. A bare `image-meta` (no `-from`) is
// the toolstack's own, e.g. passed at vdi_create to a driver that does not
// store machine data: a scan never removes it.
import type { XenAPISession } from '../xenapi/session.js';

export const SM_CONFIG_IMAGE_META = 'image-meta';
export const SM_CONFIG_IMAGE_META_FROM = 'image-meta-from';

/** What a driver read for one VDI: the effective string and the VDI it comes from (both null: no value). */
export interface ImageMetaReport {
  text: string | null;
  from: string | null;
}

/** sm_config entries for a VDI being introduced. */
export function imageMetaSmConfig(r: ImageMetaReport | undefined): Record<string, string> {
  if (r === undefined || r.text === null || r.from === null) return {};
  return { [SM_CONFIG_IMAGE_META]: r.text, [SM_CONFIG_IMAGE_META_FROM]: r.from };
}

/**
 * Bring an existing record's two keys in line with `r`; returns whether
 * anything changed. `r` undefined (the driver did not read the data): nothing
 * is touched. No value: the keys go only when `image-meta-from` shows they
 * were a driver's report.
 */
export async function syncImageMetaKeys(xapi: XenAPISession, ref: string, sm: Readonly<Record<string, string>>, r: ImageMetaReport | undefined): Promise<boolean> {
  if (r === undefined) return false;
  const want = imageMetaSmConfig(r);
  const ours = sm[SM_CONFIG_IMAGE_META_FROM] !== undefined || want[SM_CONFIG_IMAGE_META] !== undefined;
  if (!ours) return false;
  let changed = false;
  for (const k of [SM_CONFIG_IMAGE_META, SM_CONFIG_IMAGE_META_FROM]) {
    if (sm[k] === want[k]) continue;
    if (sm[k] !== undefined) await xapi.VDI.remove_from_sm_config(ref, k);
    if (want[k] !== undefined) await xapi.VDI.add_to_sm_config(ref, k, want[k]);
    changed = true;
  }
  return changed;
}
