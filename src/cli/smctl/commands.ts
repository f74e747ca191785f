// The smctl command table: each command's parameters (checked before anything
// runs), its help text and what it does.
import type { ClassName, DbRecord } from '../../toolstack/db/schema.js';
import { UsageError } from '../../toolstack/errors.js';
import { isUuid, parseBool, parseSize } from '../../toolstack/sizes.js';
import * as sr from '../../toolstack/sr-ops.js';
import type { Toolstack } from '../../toolstack/toolstack.js';
import * as vdi from '../../toolstack/vdi-ops.js';
import { recordToWire } from '../../toolstack/xenapi/marshal.js';
import type { ParsedArgs } from './args.js';
import { formatPairs, formatRecord, formatRecords, selectFields } from './format.js';
import { type ClassView, PBD_VIEW, showMap, SM_VIEW, SR_VIEW, VDI_VIEW } from './views.js';
import { MIGRATE_COMMANDS } from './migrate-commands.js';
import { IMAGE_COMMANDS, withImageMeta } from './image-commands.js';

export interface Ctx {
  args: ParsedArgs;
  spec: CommandSpec;
  ts(): Toolstack;
  out(text: string): void;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Parameter name -> description; required ones are marked by `required`. */
  params: Record<string, string>;
  required: string[];
  /** Allowed `prefix:key=value` maps -> description. */
  maps?: Record<string, string>;
  flags?: Record<string, string>;
  /** List commands accept `<field>=<value>` filters on this view. */
  filterView?: ClassView;
  run(ctx: Ctx): Promise<void>;
}

// ---- parameter access with validation ---------------------------------------

function opt(ctx: Ctx, name: string): string | undefined {
  return ctx.args.params.get(name);
}

function req(ctx: Ctx, name: string): string {
  const v = ctx.args.params.get(name);
  if (v === undefined) throw new UsageError(`missing required parameter '${name}' for ${ctx.spec.name}`);
  return v;
}

function uuidParam(ctx: Ctx, name: string): string;
function uuidParam(ctx: Ctx, name: string, optional: true): string | undefined;
function uuidParam(ctx: Ctx, name: string, optional = false): string | undefined {
  const v = optional ? opt(ctx, name) : req(ctx, name);
  if (v === undefined) return undefined;
  if (!isUuid(v)) throw new UsageError(`invalid UUID '${v}' for parameter '${name}' (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  return v.toLowerCase();
}

function sizeParam(ctx: Ctx, name: string, optional = false): bigint | undefined {
  const v = optional ? opt(ctx, name) : req(ctx, name);
  if (v === undefined) return undefined;
  try {
    return parseSize(name, v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function boolParam(ctx: Ctx, name: string): boolean | undefined {
  const v = opt(ctx, name);
  if (v === undefined) return undefined;
  try {
    return parseBool(name, v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function enumParam<T extends string>(ctx: Ctx, name: string, allowed: readonly T[]): T | undefined {
  const v = opt(ctx, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v))
    throw new UsageError(`invalid value '${v}' for parameter '${name}' (allowed: ${allowed.join(', ')})`);
  return v as T;
}

function mapParam(ctx: Ctx, prefix: string): Record<string, string> {
  return { ...(ctx.args.maps.get(prefix) ?? {}) };
}

// ---- list helpers ------------------------------------------------------------------

const LIST_FLAGS = {
  '--minimal': 'print only the uuids, comma-separated',
  '--json': 'print the XenAPI records (ref -> record) as JSON',
};

function jsonRecords(ctx: Ctx, cls: ClassName, recs: DbRecord[]): string {
  const schema = ctx.ts().db.schema(cls);
  const obj = Object.fromEntries(
    recs.map((r) => [
      r.ref,
      Object.fromEntries(
        Object.entries(recordToWire(schema, r)).map(([k, v]) => [
          k,
          v instanceof Date ? String(r[k]) : v,
        ]),
      ),
    ]),
  );
  return `${JSON.stringify(obj, null, 2)}\n`;
}

function listRecords(ctx: Ctx, cls: ClassName, view: ClassView, recs: DbRecord[]): void {
  const db = ctx.ts().db;
  // Filters: any `<field>=<value>` other than params= selects on the displayed value.
  for (const [k, v] of ctx.args.params) {
    if (k === 'params') continue;
    const f = view.fields.find((x) => x.name === k)!;
    recs = recs.filter((r) => f.get(r, db) === v);
  }
  if (ctx.args.flags.has('--json')) return ctx.out(jsonRecords(ctx, cls, recs));
  if (ctx.args.flags.has('--minimal')) return ctx.out(`${recs.map((r) => String(r['uuid'])).join(',')}\n`);
  ctx.out(formatRecords(recs, selectFields(view, opt(ctx, 'params')), db));
}

function paramList(ctx: Ctx, view: ClassView, rec: DbRecord): void {
  ctx.out(`${formatRecord(rec, view.fields, ctx.ts().db)}\n`);
}

function flush(ctx: Ctx): void {
  for (const w of ctx.ts().warnings.splice(0)) process.stderr.write(`Warning: ${w}\n`);
}

// ---- the commands ------------------------------------------------------------------

const SR_CREATE_MAPS = {
  'device-config': 'driver configuration, e.g. device-config:location=/srv/sr (see sm-list params=configuration)',
  'sm-config': 'SR sm-config entries',
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'sm-list',
    summary: 'List the SM plug-ins found (runs sr_get_driver_info on each and records the result).',
    params: { params: "fields to show: comma-separated names, or 'all'" },
    required: [],
    flags: LIST_FLAGS,
    filterView: SM_VIEW,
    async run(ctx) {
      const recs = await ctx.ts().refreshSm();
      flush(ctx);
      listRecords(ctx, 'SM', SM_VIEW, recs);
    },
  },
  {
    name: 'sr-create',
    summary: 'Create an SR: sr_create, sr_attach, then a scan. Prints the new SR uuid.',
    params: {
      type: 'SR type (a plug-in name, see sm-list)',
      'name-label': 'SR name',
      'name-description': 'SR description',
      shared: 'true/false (default false)',
      'content-type': "content type, e.g. 'user'",
      'physical-size': 'size passed to sr_create (default 0), with KiB/MiB/GiB/TiB units',
    },
    required: ['type', 'name-label'],
    maps: SR_CREATE_MAPS,
    async run(ctx) {
      const shared = boolParam(ctx, 'shared');
      const physicalSize = sizeParam(ctx, 'physical-size', true);
      const rec = await sr.srCreate(ctx.ts(), {
        type: req(ctx, 'type'),
        nameLabel: req(ctx, 'name-label'),
        ...(opt(ctx, 'name-description') !== undefined ? { nameDescription: opt(ctx, 'name-description')! } : {}),
        ...(shared !== undefined ? { shared } : {}),
        ...(opt(ctx, 'content-type') !== undefined ? { contentType: opt(ctx, 'content-type')! } : {}),
        deviceConfig: mapParam(ctx, 'device-config'),
        smConfig: mapParam(ctx, 'sm-config'),
        ...(physicalSize !== undefined ? { physicalSize } : {}),
      });
      flush(ctx);
      ctx.out(`${String(rec['uuid'])}\n`);
    },
  },
  {
    name: 'sr-probe',
    summary: 'Ask a driver what it finds for a device-config (sr_probe); prints the XML it returns.',
    params: { type: 'SR type' },
    required: ['type'],
    maps: SR_CREATE_MAPS,
    async run(ctx) {
      const xml = await sr.srProbe(ctx.ts(), {
        type: req(ctx, 'type'),
        deviceConfig: mapParam(ctx, 'device-config'),
        smConfig: mapParam(ctx, 'sm-config'),
      });
      ctx.out(xml.endsWith('\n') ? xml : `${xml}\n`);
    },
  },
  {
    name: 'sr-scan',
    summary: 'Rescan an SR (sr_scan): the driver reconciles the VDI records with what is on disk.',
    params: { uuid: 'SR uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.srScan(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'sr-update',
    summary: 'Refresh an SR\'s size fields (sr_update; needs SR_UPDATE).',
    params: { uuid: 'SR uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.srUpdate(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'sr-list',
    summary: 'List SRs. Filter with <field>=<value>, e.g. type=ext.',
    params: { params: "fields to show: comma-separated names, or 'all'" },
    required: [],
    flags: LIST_FLAGS,
    filterView: SR_VIEW,
    async run(ctx) {
      listRecords(ctx, 'SR', SR_VIEW, ctx.ts().db.all('SR'));
    },
  },
  {
    name: 'sr-param-list',
    summary: 'Show every field of one SR.',
    params: { uuid: 'SR uuid' },
    required: ['uuid'],
    async run(ctx) {
      paramList(ctx, SR_VIEW, ctx.ts().srByUuid(uuidParam(ctx, 'uuid')));
    },
  },
  {
    name: 'sr-forget',
    summary: 'Remove an SR, its PBDs and VDIs from the database (no driver call). The SR must be unplugged.',
    params: { uuid: 'SR uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.srForget(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'sr-destroy',
    summary: 'Destroy an SR (sr_delete) and forget it. As xe, unplug its PBD first (pbd-unplug).',
    params: { uuid: 'SR uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.srDestroy(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'pbd-list',
    summary: 'List PBDs (the SR-to-host connections and their device-config).',
    params: { params: "fields to show: comma-separated names, or 'all'" },
    required: [],
    flags: LIST_FLAGS,
    filterView: PBD_VIEW,
    async run(ctx) {
      listRecords(ctx, 'PBD', PBD_VIEW, ctx.ts().db.all('PBD'));
    },
  },
  {
    name: 'pbd-param-list',
    summary: 'Show every field of one PBD.',
    params: { uuid: 'PBD uuid' },
    required: ['uuid'],
    async run(ctx) {
      paramList(ctx, PBD_VIEW, ctx.ts().pbdByUuid(uuidParam(ctx, 'uuid')));
    },
  },
  {
    name: 'pbd-plug',
    summary: 'Attach the SR on this host (sr_attach), then scan it.',
    params: { uuid: 'PBD uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.pbdPlug(ctx.ts(), uuidParam(ctx, 'uuid'));
      flush(ctx);
    },
  },
  {
    name: 'pbd-unplug',
    summary: 'Detach the SR on this host (sr_detach). Refused while VDIs of the SR are attached.',
    params: { uuid: 'PBD uuid' },
    required: ['uuid'],
    async run(ctx) {
      await sr.pbdUnplug(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  withImageMeta({
    name: 'vdi-create',
    summary: 'Create a VDI (vdi_create). Prints the new VDI uuid.',
    params: {
      'sr-uuid': 'SR uuid',
      'name-label': 'VDI name',
      'name-description': 'VDI description',
      'virtual-size': 'size: bytes or with a unit (KiB, MiB, GiB, TiB; K/M/G/T and KB/MB/GB/TB are the same powers of 1024)',
      type: `VDI type (${vdi.VDI_TYPES.join(', ')}; default user)`,
      sharable: 'true/false',
      'read-only': 'true/false',
    },
    required: ['sr-uuid', 'name-label', 'virtual-size'],
    maps: {
      'sm-config': 'sm-config for the driver, e.g. sm-config:image-format=qcow2',
      'other-config': 'other-config entries stored on the VDI',
    },
    async run(ctx) {
      const srUuid = uuidParam(ctx, 'sr-uuid');
      const virtualSize = sizeParam(ctx, 'virtual-size')!;
      const type = enumParam(ctx, 'type', vdi.VDI_TYPES);
      const sharable = boolParam(ctx, 'sharable');
      const readOnly = boolParam(ctx, 'read-only');
      const other = mapParam(ctx, 'other-config');
      const rec = await vdi.vdiCreate(ctx.ts(), {
        srUuid,
        nameLabel: req(ctx, 'name-label'),
        ...(opt(ctx, 'name-description') !== undefined ? { nameDescription: opt(ctx, 'name-description')! } : {}),
        virtualSize,
        ...(type !== undefined ? { type } : {}),
        smConfig: mapParam(ctx, 'sm-config'),
        ...(readOnly !== undefined ? { readOnly } : {}),
        ...(sharable !== undefined ? { sharable } : {}),
        ...(Object.keys(other).length > 0 ? { otherConfig: other } : {}),
      });
      ctx.out(`${String(rec['uuid'])}\n`);
    },
  }),
  {
    name: 'vdi-list',
    summary: 'List VDIs. Filter with <field>=<value>, e.g. sr-uuid=<uuid>.',
    params: { params: "fields to show: comma-separated names, or 'all'" },
    required: [],
    flags: LIST_FLAGS,
    filterView: VDI_VIEW,
    async run(ctx) {
      const srUuid = opt(ctx, 'sr-uuid');
      if (srUuid !== undefined) uuidParam(ctx, 'sr-uuid');
      listRecords(ctx, 'VDI', VDI_VIEW, ctx.ts().db.all('VDI'));
    },
  },
  {
    name: 'vdi-param-list',
    summary: 'Show every field of one VDI.',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    async run(ctx) {
      paramList(ctx, VDI_VIEW, ctx.ts().vdiByUuid(uuidParam(ctx, 'uuid')));
    },
  },
  {
    name: 'vdi-snapshot',
    summary: 'Snapshot a VDI (vdi_snapshot). Prints the snapshot uuid.',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    maps: { 'driver-params': 'driver_params for the driver, e.g. driver-params:type=single' },
    async run(ctx) {
      const rec = await vdi.vdiSnapshot(ctx.ts(), uuidParam(ctx, 'uuid'), mapParam(ctx, 'driver-params'));
      ctx.out(`${String(rec['uuid'])}\n`);
    },
  },
  {
    name: 'vdi-clone',
    summary: 'Clone a VDI (vdi_clone). Prints the clone uuid.',
    params: { uuid: 'VDI uuid', 'new-name-label': 'name of the clone', 'new-name-description': 'description of the clone' },
    required: ['uuid'],
    maps: { 'driver-params': 'driver_params for the driver' },
    async run(ctx) {
      const rec = await vdi.vdiClone(ctx.ts(), uuidParam(ctx, 'uuid'), {
        driverParams: mapParam(ctx, 'driver-params'),
        ...(opt(ctx, 'new-name-label') !== undefined ? { newNameLabel: opt(ctx, 'new-name-label')! } : {}),
        ...(opt(ctx, 'new-name-description') !== undefined ? { newNameDescription: opt(ctx, 'new-name-description')! } : {}),
      });
      ctx.out(`${String(rec['uuid'])}\n`);
    },
  },
  {
    name: 'vdi-resize',
    summary: 'Resize a VDI (vdi_resize).',
    params: { uuid: 'VDI uuid', 'disk-size': 'new size: bytes or with a unit (KiB, MiB, GiB, TiB)' },
    required: ['uuid', 'disk-size'],
    async run(ctx) {
      const uuid = uuidParam(ctx, 'uuid');
      await vdi.vdiResize(ctx.ts(), uuid, sizeParam(ctx, 'disk-size')!);
    },
  },
  {
    name: 'vdi-destroy',
    summary: 'Delete a VDI (vdi_delete). Refused while it is attached.',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    async run(ctx) {
      await vdi.vdiDestroy(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'vdi-forget',
    summary: 'Remove a VDI record from the database (no driver call).',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    async run(ctx) {
      await vdi.vdiForget(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'vdi-introduce',
    summary: 'Make an existing volume known (vdi_introduce; needs VDI_INTRODUCE). Prints the VDI uuid.',
    params: {
      'sr-uuid': 'SR uuid',
      uuid: 'uuid to give the VDI (default: a new one)',
      location: 'the volume\'s location in the SR',
      'name-label': 'VDI name',
      'name-description': 'VDI description',
      type: `VDI type (${vdi.VDI_TYPES.join(', ')})`,
      sharable: 'true/false',
      'read-only': 'true/false',
    },
    required: ['sr-uuid', 'location'],
    maps: { 'sm-config': 'sm-config for the driver' },
    async run(ctx) {
      const srUuid = uuidParam(ctx, 'sr-uuid');
      const uuid = uuidParam(ctx, 'uuid', true);
      const type = enumParam(ctx, 'type', vdi.VDI_TYPES);
      const sharable = boolParam(ctx, 'sharable');
      const readOnly = boolParam(ctx, 'read-only');
      const rec = await vdi.vdiIntroduce(ctx.ts(), {
        srUuid,
        ...(uuid !== undefined ? { uuid } : {}),
        location: req(ctx, 'location'),
        smConfig: mapParam(ctx, 'sm-config'),
        ...(opt(ctx, 'name-label') !== undefined ? { nameLabel: opt(ctx, 'name-label')! } : {}),
        ...(opt(ctx, 'name-description') !== undefined ? { nameDescription: opt(ctx, 'name-description')! } : {}),
        ...(type !== undefined ? { type } : {}),
        ...(sharable !== undefined ? { sharable } : {}),
        ...(readOnly !== undefined ? { readOnly } : {}),
      });
      ctx.out(`${String(rec['uuid'])}\n`);
    },
  },
  {
    name: 'vdi-update',
    summary: 'Ask the driver to refresh a VDI (vdi_update; needs VDI_UPDATE).',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    async run(ctx) {
      await vdi.vdiUpdate(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  {
    name: 'vdi-attach',
    summary: 'Attach and activate a VDI on this host (vdi_attach + vdi_activate); prints where its data is.',
    params: { uuid: 'VDI uuid', mode: 'RW (default) or RO' },
    required: ['uuid'],
    async run(ctx) {
      const uuid = uuidParam(ctx, 'uuid');
      const mode = enumParam(ctx, 'mode', ['RW', 'RO'] as const) ?? 'RW';
      const r = await vdi.vdiAttach(ctx.ts(), uuid, mode);
      const pairs: [string, string][] = [];
      if (r.params !== undefined) pairs.push(['params ( RO)', r.params]);
      pairs.push(['params-nbd ( RO)', r.params_nbd]);
      pairs.push(['o-direct ( RO)', String(r.o_direct)]);
      pairs.push(['o-direct-reason ( RO)', r.o_direct_reason]);
      pairs.push(['xenstore-data (MRO)', showMap(r.xenstore_data)]);
      ctx.out(formatPairs(pairs));
    },
  },
  {
    name: 'vdi-detach',
    summary: 'Deactivate and detach a VDI attached with vdi-attach (vdi_deactivate + vdi_detach).',
    params: { uuid: 'VDI uuid' },
    required: ['uuid'],
    async run(ctx) {
      await vdi.vdiDetach(ctx.ts(), uuidParam(ctx, 'uuid'));
    },
  },
  ...MIGRATE_COMMANDS,
  ...IMAGE_COMMANDS,
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Checks every given parameter, map and flag against the command's spec before anything runs. */
export function checkParams(spec: CommandSpec, args: ParsedArgs): void {
  const known = Object.keys(spec.params);
  const filterNames = spec.filterView?.fields.map((f) => f.name) ?? [];
  for (const k of args.params.keys()) {
    if (known.includes(k) || filterNames.includes(k)) continue;
    const allowed = [...known, ...Object.keys(spec.maps ?? {}).map((m) => `${m}:<key>`)];
    throw new UsageError(
      `unknown parameter '${k}' for ${spec.name}` +
        (allowed.length ? ` (allowed: ${allowed.join(', ')}${filterNames.length ? ', or a field name to filter on' : ''})` : ' (it takes none)'),
    );
  }
  for (const prefix of args.maps.keys()) {
    if (!spec.maps || !(prefix in spec.maps))
      throw new UsageError(
        `unknown map parameter '${prefix}:' for ${spec.name}` +
          (spec.maps ? ` (allowed: ${Object.keys(spec.maps).map((m) => `${m}:<key>=<value>`).join(', ')})` : ' (it takes no map parameters)'),
      );
  }
  const flags = Object.keys(spec.flags ?? {});
  for (const f of args.flags) {
    if (f === '--help') continue;
    if (!flags.includes(f)) throw new UsageError(`unknown option '${f}' for ${spec.name}${flags.length ? ` (allowed: ${flags.join(', ')})` : ''}`);
  }
  for (const r of spec.required) if (!args.params.has(r)) throw new UsageError(`missing required parameter '${r}' for ${spec.name}`);
}

