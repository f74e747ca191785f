// How xe shows each class: hyphenated field names, access tags ( RO)/( RW)/
// (MRO)/(MRW)/(SRO), maps as `k: v; k2: v2`, and the default fields of *-list.
import type { DbRecord } from '../../toolstack/db/schema.js';
import type { StateDb } from '../../toolstack/db/state-db.js';

export interface FieldView {
  name: string;
  access: ' RO' | ' RW' | 'MRO' | 'MRW' | 'SRO' | 'SRW';
  /** Extra tag after the access, as xe's `[DEPRECATED]`. */
  tag?: string;
  get(rec: DbRecord, db: StateDb): string;
}

export interface ClassView {
  fields: FieldView[];
  defaults: string[];
}

export function showMap(m: unknown): string {
  return Object.entries((m ?? {}) as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join('; ');
}

const showSet = (s: unknown): string => ((s ?? []) as string[]).join('; ');
const showBool = (b: unknown): string => (b ? 'true' : 'false');
const str = (f: string) => (r: DbRecord) => String(r[f] ?? '');
const num = (f: string) => (r: DbRecord) => String(r[f] ?? 0);
const bool = (f: string) => (r: DbRecord) => showBool(r[f]);
const map = (f: string) => (r: DbRecord) => showMap(r[f]);

function uuidOf(db: StateDb, cls: 'SR' | 'VDI' | 'host', ref: unknown): string {
  const rec = typeof ref === 'string' ? db.get(cls, ref) : undefined;
  return rec ? String(rec['uuid']) : '<not in database>';
}

const RO = ' RO' as const;
const RW = ' RW' as const;

export const SM_VIEW: ClassView = {
  fields: [
    { name: 'uuid', access: RO, get: str('uuid') },
    { name: 'name-label', access: RO, get: str('name_label') },
    { name: 'name-description', access: RO, get: str('name_description') },
    { name: 'type', access: RO, get: str('type') },
    { name: 'vendor', access: RO, get: str('vendor') },
    { name: 'copyright', access: RO, get: str('copyright') },
    { name: 'required-api-version', access: RO, get: str('required_api_version') },
    { name: 'capabilities', access: RO, tag: '[DEPRECATED]', get: (r) => showSet(r['capabilities']) },
    { name: 'features', access: 'MRO', get: map('features') },
    { name: 'configuration', access: RO, get: map('configuration') },
    { name: 'driver-filename', access: RO, get: str('driver_filename') },
    { name: 'required-cluster-stack', access: RO, get: (r) => showSet(r['required_cluster_stack']) },
    { name: 'supported-image-formats', access: RO, get: (r) => ((r['supported_image_formats'] ?? []) as string[]).join(', ') },
  ],
  defaults: ['uuid', 'name-label', 'type', 'vendor', 'copyright', 'required-api-version', 'supported-image-formats'],
};

export const SR_VIEW: ClassView = {
  fields: [
    { name: 'uuid', access: RO, get: str('uuid') },
    { name: 'name-label', access: RW, get: str('name_label') },
    { name: 'name-description', access: RW, get: str('name_description') },
    {
      name: 'host',
      access: RO,
      get: (r, db) => {
        const pbd = db.where('PBD', 'SR', r.ref)[0];
        const host = pbd ? db.get('host', String(pbd['host'])) : undefined;
        return host ? String(host['name_label']) : '<not in database>';
      },
    },
    { name: 'VDIs', access: 'SRO', get: (r, db) => db.where('VDI', 'SR', r.ref).map((v) => String(v['uuid'])).join('; ') },
    { name: 'PBDs', access: 'SRO', get: (r, db) => db.where('PBD', 'SR', r.ref).map((p) => String(p['uuid'])).join('; ') },
    { name: 'virtual-allocation', access: RO, get: num('virtual_allocation') },
    { name: 'physical-utilisation', access: RO, get: num('physical_utilisation') },
    { name: 'physical-size', access: RO, get: num('physical_size') },
    { name: 'type', access: RO, get: str('type') },
    { name: 'content-type', access: RO, get: str('content_type') },
    { name: 'shared', access: RW, get: bool('shared') },
    { name: 'other-config', access: 'MRW', get: map('other_config') },
    { name: 'sm-config', access: 'MRO', get: map('sm_config') },
  ],
  defaults: ['uuid', 'name-label', 'name-description', 'host', 'type', 'content-type'],
};

export const PBD_VIEW: ClassView = {
  fields: [
    { name: 'uuid', access: RO, get: str('uuid') },
    { name: 'host-uuid', access: RO, get: (r, db) => uuidOf(db, 'host', r['host']) },
    { name: 'sr-uuid', access: RO, get: (r, db) => uuidOf(db, 'SR', r['SR']) },
    { name: 'device-config', access: 'MRO', get: map('device_config') },
    { name: 'currently-attached', access: RO, get: bool('currently_attached') },
    { name: 'other-config', access: 'MRW', get: map('other_config') },
  ],
  defaults: ['uuid', 'host-uuid', 'sr-uuid', 'device-config', 'currently-attached'],
};

export const VDI_VIEW: ClassView = {
  fields: [
    { name: 'uuid', access: RO, get: str('uuid') },
    { name: 'name-label', access: RW, get: str('name_label') },
    { name: 'name-description', access: RW, get: str('name_description') },
    { name: 'is-a-snapshot', access: RO, get: bool('is_a_snapshot') },
    {
      name: 'snapshot-of',
      access: RO,
      get: (r, db) => (r['snapshot_of'] === 'OpaqueRef:NULL' ? '<not in database>' : uuidOf(db, 'VDI', r['snapshot_of'])),
    },
    {
      name: 'snapshots',
      access: RO,
      get: (r, db) => db.where('VDI', 'snapshot_of', r.ref).map((v) => String(v['uuid'])).join('; '),
    },
    { name: 'snapshot-time', access: RO, get: str('snapshot_time') },
    { name: 'sr-uuid', access: RO, get: (r, db) => uuidOf(db, 'SR', r['SR']) },
    {
      name: 'sr-name-label',
      access: RO,
      get: (r, db) => String(db.get('SR', String(r['SR']))?.['name_label'] ?? '<not in database>'),
    },
    { name: 'virtual-size', access: RO, get: num('virtual_size') },
    { name: 'physical-utilisation', access: RO, get: num('physical_utilisation') },
    { name: 'location', access: RO, get: str('location') },
    { name: 'type', access: RO, get: (r) => typeLabel(String(r['type'] ?? '')) },
    { name: 'sharable', access: RO, get: bool('sharable') },
    { name: 'read-only', access: RO, get: bool('read_only') },
    { name: 'managed', access: RO, get: bool('managed') },
    { name: 'missing', access: RO, get: bool('missing') },
    { name: 'other-config', access: 'MRW', get: map('other_config') },
    { name: 'xenstore-data', access: 'MRO', get: map('xenstore_data') },
    { name: 'sm-config', access: 'MRO', get: map('sm_config') },
    { name: 'on-boot', access: RW, get: str('on_boot') },
    { name: 'allow-caching', access: RW, get: bool('allow_caching') },
    {
      name: 'metadata-of-pool',
      access: RO,
      get: (r) => (r['metadata_of_pool'] === 'OpaqueRef:NULL' ? '<not in database>' : String(r['metadata_of_pool'])),
    },
    { name: 'cbt-enabled', access: RO, get: bool('cbt_enabled') },
    {
      name: 'attached-here',
      access: RO,
      get: (r, db) => {
        const a = db.attachment(r.ref);
        return a ? a.mode : 'false';
      },
    },
  ],
  defaults: ['uuid', 'name-label', 'name-description', 'sr-uuid', 'virtual-size', 'sharable', 'read-only'],
};

/** xe capitalises VDI types in listings (Record_util.vdi_type_to_string). */
function typeLabel(t: string): string {
  const labels: Record<string, string> = {
    user: 'User', system: 'System', ephemeral: 'Ephemeral', suspend: 'Suspend', crashdump: 'Crashdump',
    ha_statefile: 'HA statefile', metadata: 'Metadata', redo_log: 'Redo log', rrd: 'rrd', pvs_cache: 'PVS cache',
    cbt_metadata: 'CBT metadata',
  };
  return labels[t] ?? t;
}
