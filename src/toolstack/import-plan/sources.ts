// Where the planner's input comes from:
//   * image files: the image-meta library reads the effective value and walks
//     the chain itself (the operator holds the files, nothing is attached);
//   * VDIs: the toolstack asks the SR's driver (vdi_update) and reads what the
//     driver reported in the VDI record's sm_config (`image-meta`, and
//     `image-meta-from` = the VDI the value comes from). It never opens the
//     SR's files itself: only the driver knows how its SR stores images.
import { resolve } from 'node:path';
import { detectFormat } from '../../sdk/image-meta/detect.js';
import { readEffective } from '../../sdk/image-meta/resolve.js';
import { opsFor } from '../../sdk/formats/index.js';
import { XenApiError } from '../errors.js';
import type { Toolstack } from '../toolstack.js';
import { vdiUpdate } from '../vdi-ops.js';
import type { ImageMetaInput } from './plan.js';
import { SM_CONFIG_META, SM_CONFIG_META_FROM } from './sm-config-keys.js';

/** sm_config keys the file-SR driver family fills in on vdi_update (src/sdk/file-sr/image-meta.ts). */
export { SM_CONFIG_META, SM_CONFIG_META_FROM };

/** One image file (format detected from its signature unless `format` is given). */
export async function inputFromFile(path: string, format?: string): Promise<ImageMetaInput> {
  const abs = resolve(path);
  const fmt = detectFormat(abs, format);
  const eff = await readEffective({ path: abs, format: fmt });
  const info = await opsFor(fmt).info(abs);
  return {
    label: abs,
    text: eff.text,
    from: eff.from?.path ?? null,
    sources: eff.sources,
    virtualSize: info.virtualSize,
  };
}

/** One VDI, through its driver: vdi_update, then the record's sm_config. */
export async function inputFromVdi(ts: Toolstack, uuid: string): Promise<ImageMetaInput> {
  ts.vdiByUuid(uuid); // UUID_INVALID naming the uuid before any driver call
  try {
    await vdiUpdate(ts, uuid);
  } catch (e) {
    if (e instanceof XenApiError && e.code === 'SR_OPERATION_NOT_SUPPORTED') {
      throw new XenApiError(e.code, e.params, `VDI ${uuid}: cannot read its machine data: ${e.message} (the planner asks the driver with vdi_update)`);
    }
    throw e;
  }
  const rec = ts.vdiByUuid(uuid);
  const sm = (rec['sm_config'] ?? {}) as Record<string, string>;
  const text = sm[SM_CONFIG_META] ?? null;
  const from = text === null ? null : (sm[SM_CONFIG_META_FROM] ?? uuid);
  const size = Number(rec['virtual_size']);
  const name = String(rec['name_label'] ?? '');
  return {
    label: uuid,
    ...(name !== '' ? { name } : {}),
    text,
    from,
    ...(Number.isFinite(size) && size > 0 ? { virtualSize: size } : {}),
  };
}
