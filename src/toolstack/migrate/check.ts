// assert-can-migrate: every check a copy or migration needs, run against the
// database and the SM records before anything is created, and every problem
// reported at once (one line each, naming the VDI, the format and what is
// allowed). xapi's rules (xapi_vm_migrate.ml check_supported_image_format):
// a requested format must be listed in the destination SR's SM record
// `supported_image_formats` (an empty list means no check: the driver chooses),
// else VDI_INCOMPATIBLE_TYPE "Image format <fmt> is not supported by <sr>".
import type { ImageFormat } from '../../driver-info.js';
import { fitsFormat, formatBytes, rulesOf } from '../../sdk/formats/rules.js';
import { type DbRecord } from '../db/schema.js';
import { IMAGE_FORMATS } from '../driver-info.js';
import { XenApiError } from '../errors.js';
import type { Toolstack } from '../toolstack.js';

/** One VDI to move: to which SR, and (optionally) in which image format. */
export interface MoveRequest {
  vdiUuid: string;
  srUuid: string;
  /** dest-img-format / image-format:<vdi>; undefined = the destination driver chooses. */
  format?: string;
}

/** `copy` leaves the source; `migrate` moves the VDI with its snapshots and deletes the source. */
export type MoveMode = 'copy' | 'migrate';

export interface MigrationProblem {
  /** XenAPI error code, as xapi would raise it for this problem alone. */
  code: string;
  params: string[];
  /** One line naming the VDI, the format / SR and what is allowed. */
  message: string;
}

/** One VDI (a requested one, or a snapshot of it that moves along) and where it goes. */
export interface PlannedCopy {
  vdi: DbRecord;
  srcSr: DbRecord;
  destSr: DbRecord;
  /** The format asked for, or undefined when the destination driver chooses. */
  format: ImageFormat | undefined;
  /** For snapshots moving with their VDI: the uuid of the requested VDI they belong to. */
  snapshotOf?: string;
}

export interface MigrationPlan {
  mode: MoveMode;
  /** Snapshots first (oldest first), then the VDI they belong to, per request. */
  copies: PlannedCopy[];
}

/** All the problems found, in request order; the code is the first problem's. */
export class MigrationRefused extends XenApiError {
  override name = 'MigrationRefused';
  constructor(readonly problems: MigrationProblem[]) {
    const first = problems[0]!;
    const head = problems.length === 1 ? 'cannot migrate:' : `cannot migrate (${problems.length} problems):`;
    super(first.code, first.params, `${head}\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
  }
}

function isImageFormat(f: string): f is ImageFormat {
  return IMAGE_FORMATS.has(f);
}

function plugged(ts: Toolstack, sr: DbRecord): boolean {
  const host = ts.db.localHost().ref;
  const pbd = ts.db.where('PBD', 'SR', sr.ref).find((p) => p['host'] === host);
  return Boolean(pbd?.['currently_attached']);
}

function features(sm: DbRecord): Record<string, number> {
  return (sm['features'] as Record<string, number> | undefined) ?? {};
}

/** The snapshots of a VDI (snapshot_of = it), oldest first. */
export function snapshotsOf(ts: Toolstack, vdi: DbRecord): DbRecord[] {
  return ts.db
    .where('VDI', 'snapshot_of', vdi.ref)
    .filter((s) => Boolean(s['is_a_snapshot']))
    .sort((a, b) => String(a['snapshot_time']).localeCompare(String(b['snapshot_time'])));
}

/**
 * Checks every request together and returns the plan (what gets copied where),
 * or throws MigrationRefused listing every problem. Nothing is created or
 * changed: the only driver call is sr_get_driver_info for an SR type whose SM
 * record was never read.
 */
export async function checkMigration(ts: Toolstack, requests: readonly MoveRequest[], mode: MoveMode): Promise<MigrationPlan> {
  const problems: MigrationProblem[] = [];
  const copies: PlannedCopy[] = [];
  const add = (code: string, params: string[], message: string) => problems.push({ code, params, message });
  const seen = new Set<string>();

  for (const r of requests) {
    const vdiName = `VDI ${r.vdiUuid}`;
    if (seen.has(r.vdiUuid)) {
      add('VDI_INCOMPATIBLE_TYPE', [r.vdiUuid, 'duplicate'], `${vdiName} is listed twice`);
      continue;
    }
    seen.add(r.vdiUuid);
    const vdi = ts.db.getByUuid('VDI', r.vdiUuid);
    if (!vdi) add('UUID_INVALID', ['VDI', r.vdiUuid], `${vdiName}: no such VDI`);
    const srcSr = vdi ? ts.db.get('SR', String(vdi['SR'])) : undefined;
    const destSr = ts.db.getByUuid('SR', r.srUuid);
    if (!destSr) add('UUID_INVALID', ['SR', r.srUuid], `${vdiName}: destination SR ${r.srUuid} does not exist (see sr-list)`);

    let format: ImageFormat | undefined;
    if (r.format !== undefined && r.format !== '') {
      if (!isImageFormat(r.format))
        add('VDI_INCOMPATIBLE_TYPE', [r.vdiUuid, r.format], `${vdiName}: image format '${r.format}' not found (known formats: ${[...IMAGE_FORMATS].join(', ')})`);
      else format = r.format;
    }

    if (destSr) {
      const destName = `SR ${r.srUuid} (type ${String(destSr['type'])})`;
      if (!plugged(ts, destSr)) add('SR_NOT_ATTACHED', [destSr.ref], `${vdiName}: destination ${destName} is not plugged (run pbd-plug)`);
      let sm: DbRecord | undefined;
      try {
        sm = await ts.smFor(String(destSr['type']));
      } catch (e) {
        add('SR_UNKNOWN_DRIVER', [String(destSr['type'])], `${vdiName}: destination ${destName} has no usable driver: ${(e as Error).message}`);
      }
      if (sm) {
        if (!('VDI_CREATE' in features(sm)))
          add('SR_OPERATION_NOT_SUPPORTED', [destSr.ref], `${vdiName}: destination ${destName} cannot create VDIs (its driver does not declare VDI_CREATE)`);
        const listed = (sm['supported_image_formats'] as string[] | undefined) ?? [];
        if (format !== undefined && listed.length > 0 && !listed.includes(format))
          add(
            'VDI_INCOMPATIBLE_TYPE',
            [r.vdiUuid, `Image format ${format} is not supported by ${r.srUuid}`],
            `${vdiName}: image format ${format} not found in the formats of ${destName} (allowed: ${listed.join(', ')})`,
          );
      }
    }

    if (!vdi || !srcSr) continue;
    if (!plugged(ts, srcSr)) add('SR_NOT_ATTACHED', [srcSr.ref], `${vdiName}: its SR ${String(srcSr['uuid'])} is not plugged (run pbd-plug)`);
    if (!vdi['managed'])
      add('VDI_NOT_MANAGED', [vdi.ref], `${vdiName} is a base copy (managed=false); move the VDIs built on it instead`);
    if (mode === 'migrate' && vdi['is_a_snapshot'])
      add('VDI_IS_A_SNAPSHOT', [vdi.ref], `${vdiName} is a snapshot; it moves with the VDI it is a snapshot of`);

    // A migration takes the VDI's snapshots along, each converted to the same format.
    const members = mode === 'migrate' ? [...snapshotsOf(ts, vdi), vdi] : [vdi];
    for (const m of members) {
      const mName = m === vdi ? vdiName : `snapshot ${String(m['uuid'])} of ${vdiName}`;
      if (ts.db.attachment(m.ref)) add('VDI_IN_USE', [m.ref, mode], `${mName} is attached on this host (run vdi-detach uuid=${String(m['uuid'])} first)`);
      const size = Number(m['virtual_size']);
      if (format !== undefined && !fitsFormat(format, size)) {
        const fits = (['qcow2', 'vhd', 'raw'] as const).filter((f) => f !== format && fitsFormat(f, size));
        add(
          'VDI_TOO_LARGE',
          [m.ref, String(rulesOf(format).maxSize)],
          `${mName}: virtual size ${formatBytes(size)} (${size} bytes) exceeds the ${format} maximum of ${formatBytes(rulesOf(format).maxSize)}` +
            (fits.length ? ` (formats that can hold it: ${fits.join(', ')})` : ''),
        );
      }
      if (destSr) copies.push({ vdi: m, srcSr, destSr, format, ...(m !== vdi ? { snapshotOf: r.vdiUuid } : {}) });
    }
  }
  if (problems.length > 0) throw new MigrationRefused(problems);
  return { mode, copies };
}
