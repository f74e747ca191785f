// Which image format a new VDI gets (seed design 000: image formats per SR).
// Order: sm-config:image-format (or the legacy sm-config:type), else the first
// of device-config:preferred-image-formats, else the driver's default. A
// format the SR does not support is refused here, before anything is created.
import { SRError } from '../errors/sr-error.js';
import { IMAGE_FORMATS, isImageFormat, type ImageFormat, type ImageFormatList } from '../../driver-info.js';
import { fitsFormat, rulesOf } from './rules.js';

export interface FormatChoiceContext {
  /** SR type, for messages (e.g. 'ext'). */
  srType: string;
  /** The driver's supported_image_formats (empty = the driver chooses, anything it can write). */
  supported: ImageFormatList;
  /** The driver's default format. */
  defaultFormat: ImageFormat;
  /** The SR's device-config. */
  deviceConfig: Readonly<Record<string, string>>;
}

function allowed(ctx: FormatChoiceContext): readonly ImageFormat[] {
  return ctx.supported.length > 0 ? ctx.supported : IMAGE_FORMATS;
}

function refuse(value: string, where: string, ctx: FormatChoiceContext): never {
  throw new SRError(
    'VDIType',
    `image format '${value}' (from ${where}) is not supported by SR type '${ctx.srType}'; supported formats: ${allowed(ctx).join(', ')}`,
  );
}

/**
 * device-config:preferred-image-formats, comma-separated, in preference order.
 * Unlike upstream (which ignores unknown entries silently), an entry that is not
 * a format this SR supports is an error naming it, so a typo is not lost.
 */
export function preferredImageFormats(ctx: FormatChoiceContext): ImageFormat[] {
  const raw = ctx.deviceConfig['preferred-image-formats'];
  if (raw === undefined || raw.trim() === '') return [];
  const out: ImageFormat[] = [];
  for (const entry of raw.split(',')) {
    const f = entry.trim().toLowerCase();
    if (f === '') continue;
    if (!isImageFormat(f) || !allowed(ctx).includes(f)) refuse(entry.trim(), 'device-config:preferred-image-formats', ctx);
    if (!out.includes(f)) out.push(f);
  }
  return out;
}

/** The format for vdi_create, from the request's sm-config and the SR's configuration. */
export function chooseCreateFormat(smConfig: Readonly<Record<string, string>>, ctx: FormatChoiceContext): ImageFormat {
  for (const key of ['image-format', 'type'] as const) {
    const v = smConfig[key];
    if (v === undefined || v === '') continue;
    // xapi's legacy sm-config:type uses 'aio' for raw on LVM SRs.
    const f = key === 'type' && v === 'aio' ? 'raw' : v.toLowerCase();
    if (!isImageFormat(f) || !allowed(ctx).includes(f)) refuse(v, `sm-config:${key}`, ctx);
    return f;
  }
  const preferred = preferredImageFormats(ctx);
  if (preferred.length > 0) return preferred[0]!;
  return ctx.defaultFormat;
}

/**
 * A raw VDI has no backing files, so its snapshot goes into the first preferred
 * copy-on-write format that can hold its size (as XCP-ng's canSnapshotRaw).
 */
export function chooseRawSnapshotFormat(virtualSize: number, ctx: FormatChoiceContext): ImageFormat {
  const preferred = preferredImageFormats(ctx);
  const order = [...preferred, ...(ctx.defaultFormat !== 'raw' ? [ctx.defaultFormat] : []), ...allowed(ctx)];
  for (const f of order) {
    if (rulesOf(f).copyOnWrite && allowed(ctx).includes(f) && fitsFormat(f, virtualSize)) return f;
  }
  throw new SRError(
    'VDISnapshot',
    `cannot snapshot a raw VDI of ${virtualSize} bytes on SR type '${ctx.srType}': no supported copy-on-write format (${allowed(ctx).join(', ')}) can hold it`,
  );
}
