// smctl's commands that move VDIs between SRs (src/toolstack/migrate):
// vdi-copy, vdi-pool-migrate, vdis-migrate (xe vm-migrate's vdi:/image-format:
// maps, on a set of VDIs since smctl has no VMs) and assert-can-migrate.
import { UsageError } from '../../toolstack/errors.js';
import { isUuid } from '../../toolstack/sizes.js';
import type { MovedVdi, MoveMode, MoveRequest } from '../../toolstack/migrate/index.js';
import type { CommandSpec, Ctx } from './commands.js';

function uuidOf(ctx: Ctx, what: string, v: string): string {
  if (!isUuid(v)) throw new UsageError(`invalid UUID '${v}' for ${what} of ${ctx.spec.name} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  return v.toLowerCase();
}

function param(ctx: Ctx, name: string): string {
  const v = ctx.args.params.get(name);
  if (v === undefined) throw new UsageError(`missing required parameter '${name}' for ${ctx.spec.name}`);
  return v;
}

/** uuid= sr-uuid= [dest-img-format=] */
function singleRequest(ctx: Ctx): MoveRequest {
  const format = ctx.args.params.get('dest-img-format');
  return {
    vdiUuid: uuidOf(ctx, "parameter 'uuid'", param(ctx, 'uuid')),
    srUuid: uuidOf(ctx, "parameter 'sr-uuid'", param(ctx, 'sr-uuid')),
    ...(format !== undefined ? { format } : {}),
  };
}

/** vdi:<vdi>=<sr> ... image-format:<vdi>=<format> ... */
function mapRequests(ctx: Ctx): MoveRequest[] {
  const vdis = ctx.args.maps.get('vdi') ?? {};
  const formats = ctx.args.maps.get('image-format') ?? {};
  if (Object.keys(vdis).length === 0) throw new UsageError(`${ctx.spec.name} needs at least one vdi:<vdi-uuid>=<sr-uuid>`);
  const out: MoveRequest[] = [];
  const seen = new Set<string>();
  for (const [vdi, sr] of Object.entries(vdis)) {
    const v = uuidOf(ctx, `vdi:${vdi}`, vdi);
    if (seen.has(v)) throw new UsageError(`VDI ${v} is given twice in vdi: maps`);
    seen.add(v);
    const f = Object.entries(formats).find(([k]) => k.toLowerCase() === v)?.[1];
    out.push({ vdiUuid: v, srUuid: uuidOf(ctx, `vdi:${vdi}=${sr}`, sr), ...(f !== undefined ? { format: f } : {}) });
  }
  for (const k of Object.keys(formats)) {
    if (!isUuid(k) || !seen.has(k.toLowerCase()))
      throw new UsageError(`image-format:${k} names a VDI that has no vdi:${k}=<sr-uuid> (every VDI given a format must be given a destination)`);
  }
  return out;
}

// The copy engine (VHD engine, qemu-img, journals) is loaded only by the commands
// that use it: every other smctl call stays as quick to start as before.
const migrateLib = () => import('../../toolstack/migrate/index.js');

async function run(ctx: Ctx, requests: MoveRequest[], mode: MoveMode): Promise<MovedVdi[]> {
  const { moveVdis } = await migrateLib();
  const { terminalProgress } = await import('../../toolstack/migrate/progress.js');
  const bar = terminalProgress();
  try {
    return await moveVdis(ctx.ts(), requests, mode, bar ? { progress: (v, p, d, t) => bar.update(v, p, d, t) } : {});
  } finally {
    bar?.end();
    for (const w of ctx.ts().warnings.splice(0)) process.stderr.write(`Warning: ${w}\n`);
  }
}

const SINGLE_PARAMS = {
  uuid: 'VDI uuid',
  'sr-uuid': 'destination SR uuid',
  'dest-img-format': "image format of the new VDI (vhd, qcow2, raw; must be in the destination SR's supported-image-formats). Default: the destination driver chooses",
};

const MAPS = {
  vdi: 'vdi:<vdi-uuid>=<sr-uuid>: move this VDI to this SR (one per VDI)',
  'image-format': 'image-format:<vdi-uuid>=<format>: the destination image format of that VDI (optional per VDI)',
};

export const MIGRATE_COMMANDS: CommandSpec[] = [
  {
    name: 'vdi-copy',
    summary: 'Copy a VDI to another SR (optionally in another image format); prints the new VDI uuid. The source is left as it is.',
    params: SINGLE_PARAMS,
    required: ['uuid', 'sr-uuid'],
    async run(ctx) {
      const moved = await run(ctx, [singleRequest(ctx)], 'copy');
      ctx.out(`${moved[0]!.dest}\n`);
    },
  },
  {
    name: 'vdi-pool-migrate',
    summary:
      'Move a VDI and its snapshots to another SR (optionally in another image format): copy, verify, switch over, then delete the source. Prints the VDI\'s new uuid (as xapi, the moved VDI is a new VDI).',
    params: SINGLE_PARAMS,
    required: ['uuid', 'sr-uuid'],
    async run(ctx) {
      const moved = await run(ctx, [singleRequest(ctx)], 'migrate');
      ctx.out(`${moved.find((m) => m.snapshotOf === undefined)!.dest}\n`);
    },
  },
  {
    name: 'vdis-migrate',
    summary:
      'Move several VDIs (each with its snapshots), as xe vm-migrate does for a VM\'s disks: every VDI is checked before any data moves, and either all switch over or none. Prints "<old-uuid> <new-uuid>" per VDI moved.',
    params: {},
    required: [],
    maps: MAPS,
    async run(ctx) {
      const moved = await run(ctx, mapRequests(ctx), 'migrate');
      ctx.out(moved.map((m) => `${m.source} ${m.dest}${m.snapshotOf ? ` (snapshot of ${m.snapshotOf})` : ''}\n`).join(''));
    },
  },
  {
    name: 'assert-can-migrate',
    summary:
      'Check, without moving anything, that VDIs can move with vdis-migrate (same vdi:/image-format: maps): destination SRs exist and are plugged, formats are listed by the destination, sizes fit the formats, VDIs are not attached. Reports every problem at once.',
    params: {},
    required: [],
    maps: MAPS,
    async run(ctx) {
      await (await migrateLib()).assertCanMigrate(ctx.ts(), mapRequests(ctx), 'migrate');
    },
  },
];
