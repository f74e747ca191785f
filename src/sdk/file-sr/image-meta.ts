// Machine data (docs/image-meta.md) through the file-SR driver:
//   * vdi_create with sm_config `image-meta` = a JSON object string: checked
//     (Layers 1–2, the format's capacity) before the image exists, stored as
//     the new image's own value; refused values fail the call (VDICreate,
//     naming the key and the rule) and leave nothing behind;
//   * vdi_update first applies a request left in sm_config `image-meta-set`
//     (a JSON object string → the VDI's own value; `inherit` → drop the own
//     value) and removes the request key; a refused request fails the call
//     and changes nothing (a toolstack that rolls back a failed call's
//     writes, as smctl does, keeps the request key for the caller to fix);
//     then it writes the VDI's effective value (own or inherited) to
//     sm_config `image-meta`, and the VDI it comes from to `image-meta-from`
//     (both removed when there is none).
import type { XenAPISession, XenRecord } from '../xenapi/session.js';
import { SRError } from '../errors/sr-error.js';
import { ImageMetaError } from '../image-meta/errors.js';
import { clearOwn, readEffective, setOwn } from '../image-meta/api.js';
import { validateMetaText } from '../image-meta/rules.js';
import type { VdiFile } from './paths.js';
import type { Inventory } from './inventory.js';
import type { ReportedVdi } from './reconcile.js';
import { storeFor } from '../image-meta/store.js';
import { SIDECAR_SUFFIX } from '../image-meta/sidecar.js';
import { uuidOfFileName } from './paths.js';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';

export const IMAGE_META_SM_CONFIG_KEY = 'image-meta';
export const IMAGE_META_FROM_SM_CONFIG_KEY = 'image-meta-from';
export const IMAGE_META_SET_SM_CONFIG_KEY = 'image-meta-set';
/** `image-meta-set` value that drops the VDI's own value (it inherits again). */
export const IMAGE_META_INHERIT = 'inherit';

function asSrError(key: string, what: string, e: unknown): SRError {
  if (e instanceof SRError) return e;
  return new SRError(key, `${what}: ${(e as Error).message}`, { cause: e });
}

/** Validate sm_config:image-meta now; the returned function stores it on the created image. */
export function imageMetaOnCreate(smConfig: Readonly<Record<string, string>>): (file: VdiFile) => Promise<void> {
  const text = smConfig[IMAGE_META_SM_CONFIG_KEY];
  if (text === undefined) return async () => undefined;
  try {
    validateMetaText(text);
  } catch (e) {
    throw asSrError('VDICreate', `sm_config:${IMAGE_META_SM_CONFIG_KEY} is refused`, e);
  }
  return async (file) => {
    try {
      await setOwn({ path: file.path, format: file.format }, text);
    } catch (e) {
      throw asSrError('VDICreate', `storing sm_config:${IMAGE_META_SM_CONFIG_KEY} on ${file.path}`, e);
    }
  };
}

function smConfigOf(rec: XenRecord): Record<string, string> {
  const v = rec['sm_config'];
  return v !== null && typeof v === 'object' ? (v as Record<string, string>) : {};
}

/** vdi_update: the record's sm_config shows the effective value and its source VDI. */
export async function reportImageMeta(xapi: XenAPISession, vdiRef: string, rec: XenRecord, file: VdiFile): Promise<void> {
  let text: string | null;
  let from: string | null;
  try {
    const eff = await readEffective({ path: file.path, format: file.format });
    text = eff.text;
    from = eff.from === null ? null : (uuidOfFileName(basename(eff.from.path)) ?? eff.from.path);
  } catch (e) {
    if (e instanceof ImageMetaError) throw new SRError('VDIUnavailable', `VDI ${file.uuid}: reading its machine data: ${e.message}`, { cause: e });
    throw e;
  }
  const sm = smConfigOf(rec);
  for (const [k, want] of [[IMAGE_META_SM_CONFIG_KEY, text], [IMAGE_META_FROM_SM_CONFIG_KEY, from]] as const) {
    if (sm[k] === (want ?? undefined)) continue;
    if (sm[k] !== undefined) await xapi.VDI.remove_from_sm_config(vdiRef, k);
    if (want !== null) await xapi.VDI.add_to_sm_config(vdiRef, k, want);
  }
}

/** vdi_update: apply (or refuse) a pending sm_config:image-meta-set request, then drop the request. */
export async function applyImageMetaRequest(xapi: XenAPISession, vdiRef: string, rec: XenRecord, file: VdiFile): Promise<void> {
  const want = smConfigOf(rec)[IMAGE_META_SET_SM_CONFIG_KEY];
  if (want === undefined) return;
  await xapi.VDI.remove_from_sm_config(vdiRef, IMAGE_META_SET_SM_CONFIG_KEY);
  const ref = { path: file.path, format: file.format };
  try {
    if (want === IMAGE_META_INHERIT) await clearOwn(ref);
    else await setOwn(ref, want);
  } catch (e) {
    if (e instanceof ImageMetaError) {
      throw new SRError('VDIUnavailable', `VDI ${file.uuid}: sm_config:${IMAGE_META_SET_SM_CONFIG_KEY} is refused (nothing changed; the request was removed): ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/**
 * sr_scan: give each reported VDI its effective machine data (`imageMeta`,
 * written to sm_config image-meta/image-meta-from by the reconcile step).
 * Chains come from the inventory (already parsed); each image's own value
 * comes from the header the inventory read (qcow2), or from its sidecar, read
 * only when the directory lists one (most images have none: one readdir
 * instead of a failed open per image). A VDI whose chain cannot be read is
 * left without `imageMeta`, so its record's keys are not touched.
 */
export async function attachImageMeta(inv: Inventory, vdis: ReportedVdi[], log: (m: string) => void): Promise<void> {
  const sidecars = new Set(readdirSync(inv.srDir).filter((n) => n.endsWith(SIDECAR_SUFFIX)));
  const own = new Map<string, string | null>();
  const ownOf = async (uuid: string): Promise<string | null> => {
    if (!own.has(uuid)) {
      const n = inv.vdis.get(uuid)!;
      const image = { path: n.path, format: n.format };
      let value: string | null;
      if (n.ownImageMeta !== undefined) value = n.ownImageMeta;
      else if (n.format !== 'qcow2' && !sidecars.has(`${basename(n.path)}${SIDECAR_SUFFIX}`)) value = null;
      else value = await storeFor(image).read(image);
      own.set(uuid, value);
    }
    return own.get(uuid)!;
  };
  for (const r of vdis) {
    try {
      let cur = inv.vdis.get(r.uuid);
      let found: { text: string; from: string } | null = null;
      for (let depth = 0; cur !== undefined && depth < 1024; depth++) {
        const text = await ownOf(cur.uuid);
        if (text !== null) {
          found = { text, from: cur.uuid };
          break;
        }
        cur = cur.parent === null ? undefined : inv.vdis.get(cur.parent);
      }
      r.imageMeta = found ?? { text: null, from: null };
    } catch (e) {
      log(`sr_scan: machine data of VDI ${r.uuid} not read: ${(e as Error).message}`);
    }
  }
}
