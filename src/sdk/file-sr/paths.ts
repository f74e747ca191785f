// Where a file SR keeps things, and the one gate every request value passes
// before it becomes a path: a VDI's file is `<srDir>/<uuid>.<ext>` and its
// location is its uuid, so anything that is not a plain UUID is refused here,
// with a message that names the value and says why, before anything is touched.
import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { ImageFormat } from '../../driver-info.js';
import { env } from '../env.js';
import { SRError } from '../errors/sr-error.js';
import { rulesOf } from '../formats/rules.js';

export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Formats looked for when a VDI's file is searched by uuid, in xapi's FileSR order. */
export const FILE_FORMATS: readonly ImageFormat[] = ['vhd', 'qcow2', 'raw'];

function why(value: string): string {
  if (value === '') return 'it is empty';
  if (value.includes('\0')) return 'it contains a NUL byte';
  if (value.startsWith('/')) return 'it is an absolute path';
  if (value.split(/[/\\]/).includes('..')) return "it contains '..'";
  if (/[/\\]/.test(value)) return 'it contains a path separator';
  return 'it is not a UUID (8-4-4-4-12 hexadecimal digits)';
}

/**
 * `value` as a VDI uuid/location of a file SR, lower-cased. Anything else
 * (`../x`, `/etc/passwd`, NUL bytes, names with separators) is a BadRequest
 * naming the member and the value; the SR is not touched.
 */
export function checkVdiName(member: string, value: string): string {
  if (typeof value !== 'string' || !UUID_RE.test(value)) {
    throw new SRError('BadRequest', `${member} ${JSON.stringify(value)} is refused: ${why(String(value))}; a file SR names VDIs by UUID (location == uuid)`);
  }
  return value.toLowerCase();
}

export function checkSrUuid(value: string): string {
  return checkVdiName('sr_uuid', value);
}

/** The SR's directory: <SM_SR_MOUNT_ROOT>/<sr_uuid>. */
export function srDirFor(srUuid: string): string {
  return join(env.srMountRoot(), checkSrUuid(srUuid));
}

/** `<srDir>/<uuid>.<ext>`; asserts the result is a direct child of srDir. */
export function vdiPath(srDir: string, uuid: string, format: ImageFormat): string {
  const name = `${checkVdiName('vdi uuid', uuid)}.${rulesOf(format).extension}`;
  const p = join(srDir, name);
  if (resolve(p) !== resolve(srDir) + sep + name) throw new SRError('BadRequest', `refusing path ${p}: outside the SR ${srDir}`);
  return p;
}

export interface VdiFile {
  uuid: string;
  path: string;
  format: ImageFormat;
}

/** The file holding VDI `uuid`, or null when there is none. */
export function findVdiFile(srDir: string, uuid: string): VdiFile | null {
  for (const format of FILE_FORMATS) {
    const path = vdiPath(srDir, uuid, format);
    if (existsSync(path)) return { uuid: uuid.toLowerCase(), path, format };
  }
  return null;
}

/** VDI uuid of an image file name `<uuid>.<ext>` in the SR, or null for other names. */
export function uuidOfFileName(name: string): string | null {
  const m = /^([0-9a-fA-F-]{36})\.(vhd|qcow2|raw)$/.exec(name);
  return m && UUID_RE.test(m[1]!) ? m[1]!.toLowerCase() : null;
}
