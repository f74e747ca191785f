// smctl's machine-data commands (docs/import-plan.md): image-import-plan, the
// Layer-4 import planner over image files and/or VDIs, and the `meta:` map of
// vdi-create (withImageMeta wraps the existing command), which sets the new
// VDI's machine data through the driver's sm_config `image-meta`.
import { ImageMetaError } from '../../sdk/image-meta/errors.js';
import { validateMetaText } from '../../sdk/image-meta/rules.js';
import { UsageError } from '../../toolstack/errors.js';
import { metaMapToText } from '../../toolstack/import-plan/meta-map.js';
import type { ImageMetaInput } from '../../toolstack/import-plan/plan.js';
import { SM_CONFIG_META, SM_CONFIG_META_FROM } from '../../toolstack/import-plan/sm-config-keys.js';
import { isUuid } from '../../toolstack/sizes.js';
import { vdiUpdate } from '../../toolstack/vdi-ops.js';
import type { CommandSpec, Ctx } from './commands.js';

function listParam(ctx: Ctx, name: string): string[] {
  const v = ctx.args.params.get(name);
  if (v === undefined) return [];
  const items = v.split(',');
  if (items.some((x) => x === '')) throw new UsageError(`parameter '${name}' has an empty entry in '${v}' (expected a comma-separated list)`);
  const dup = items.find((x, i) => items.indexOf(x) !== i);
  if (dup !== undefined) throw new UsageError(`'${dup}' is given twice in parameter '${name}'`);
  return items;
}

/** The plan is printed, then this ends the command with exit status 1 (smctl's status for a failed command). */
export class PlanBlockedError extends Error {
  override name = 'PlanBlockedError';
}

const IMAGE_IMPORT_PLAN: CommandSpec = {
  name: 'image-import-plan',
  summary:
    "Plan a VM from its disks' machine data: proposed settings per registry key (with the rule used) and every disagreement between the disks. Exit status 1 when a disagreement blocks the plan.",
  params: {
    files: 'image files, comma-separated (format detected from the signature; raw needs *.raw/*.img or format=raw)',
    format: 'the format of every file in files= (qcow2, vhd or raw), checked against the signature',
    'vdi-uuids': 'VDIs, comma-separated: the driver reports their machine data (vdi_update, sm_config image-meta)',
  },
  required: [],
  flags: { '--json': 'print the plan as JSON (images, settings, vendor, disagreements, blocked)' },
  async run(ctx) {
    const files = listParam(ctx, 'files');
    const vdis = listParam(ctx, 'vdi-uuids').map((u) => {
      if (!isUuid(u)) throw new UsageError(`invalid UUID '${u}' in parameter 'vdi-uuids' (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
      return u.toLowerCase();
    });
    const format = ctx.args.params.get('format');
    if (files.length + vdis.length === 0) throw new UsageError(`${ctx.spec.name} needs files=<image>[,<image>...] and/or vdi-uuids=<uuid>[,<uuid>...]`);
    if (format !== undefined && files.length === 0) throw new UsageError(`parameter 'format' applies to files=, which is not given`);
    // Every VDI must exist before the first driver call.
    for (const u of vdis) ctx.ts().vdiByUuid(u);
    // The planner and the image readers load only for this command, not for every smctl call.
    const { inputFromFile, inputFromVdi } = await import('../../toolstack/import-plan/sources.js');
    const { planImport } = await import('../../toolstack/import-plan/plan.js');
    const { renderPlan } = await import('../../toolstack/import-plan/render.js');
    const inputs: ImageMetaInput[] = [];
    for (const f of files) inputs.push(await inputFromFile(f, format));
    for (const u of vdis) inputs.push(await inputFromVdi(ctx.ts(), u));
    const labels = inputs.map((i) => i.label);
    const dup = labels.find((l, i) => labels.indexOf(l) !== i);
    if (dup !== undefined) throw new UsageError(`image ${dup} is given twice`);
    const plan = planImport(inputs);
    ctx.out(ctx.args.flags.has('--json') ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
    if (plan.blocked) {
      const n = plan.disagreements.filter((d) => d.blocking).length;
      throw new PlanBlockedError(`the import plan is blocked by ${n} disagreement${n === 1 ? '' : 's'} between the images (listed above)`);
    }
  },
};

export const IMAGE_COMMANDS: CommandSpec[] = [IMAGE_IMPORT_PLAN];

function refused(e: unknown): never {
  if (e instanceof ImageMetaError) throw new UsageError(e.message);
  throw e;
}

/**
 * vdi-create with `meta:<key>=<value>`: the toolstack checks the keys (image-meta
 * rules) before any driver call and passes the object as sm-config
 * `image-meta`; afterwards it asks the driver (vdi_update) to confirm the VDI
 * reads it back, and warns when the driver did not keep it.
 */
export function withImageMeta(spec: CommandSpec): CommandSpec {
  return {
    ...spec,
    maps: {
      ...spec.maps,
      meta: `machine data for the VM the disk is for (docs/import-plan.md): meta:qemu.min-ram-MB=2048, meta:qemu.machine-types=q35,pc; a value is JSON when it parses, else a string; keys are checked against the registry (data/image-meta-keys.yaml) and passed as sm-config:${SM_CONFIG_META}`,
    },
    async run(ctx) {
      const meta = ctx.args.maps.get('meta');
      const sm = ctx.args.maps.get('sm-config') ?? {};
      if (meta === undefined) {
        if (sm[SM_CONFIG_META] !== undefined) {
          try {
            validateMetaText(sm[SM_CONFIG_META]);
          } catch (e) {
            if (e instanceof ImageMetaError) throw new UsageError(`sm-config:${SM_CONFIG_META}=${sm[SM_CONFIG_META]} is refused: ${e.message}`);
            throw e;
          }
        }
        return spec.run(ctx);
      }
      if (sm[SM_CONFIG_META] !== undefined) throw new UsageError(`give the machine data either as meta:<key>=<value> or as sm-config:${SM_CONFIG_META}=<json>, not both`);
      let text = '';
      try {
        text = metaMapToText(meta);
      } catch (e) {
        refused(e);
      }
      const maps = new Map(ctx.args.maps);
      maps.delete('meta');
      maps.set('sm-config', { ...sm, [SM_CONFIG_META]: text });
      let printed = '';
      await spec.run({
        ...ctx,
        args: { ...ctx.args, maps },
        out: (s) => {
          printed += s;
          ctx.out(s);
        },
      });
      await confirmStored(ctx, printed.trim(), text);
    },
  };
}

async function confirmStored(ctx: Ctx, uuid: string, text: string): Promise<void> {
  if (!isUuid(uuid)) return;
  const ts = ctx.ts();
  const sr = ts.db.get('SR', String(ts.vdiByUuid(uuid)['SR']));
  const warn = (why: string): void => {
    process.stderr.write(`Warning: VDI ${uuid} was created, but ${why}\n`);
  };
  if (sr === null || sr === undefined) return;
  const smRec = await ts.smFor(String(sr['type']));
  if (!('VDI_UPDATE' in (smRec['features'] as Record<string, number>))) {
    return warn(`its driver (type ${String(sr['type'])}) has no vdi_update, so the machine data cannot be confirmed`);
  }
  await vdiUpdate(ts, uuid);
  // A driver that merely copies sm_config into the record echoes image-meta but
  // never says where it comes from: only image-meta-from proves it was stored.
  const sm = (ts.vdiByUuid(uuid)['sm_config'] ?? {}) as Record<string, string>;
  const got = sm[SM_CONFIG_META];
  const from = sm[SM_CONFIG_META_FROM];
  if (got !== text || from !== uuid) {
    const reported = got === undefined ? 'no machine data' : got !== text ? `different machine data (${got})` : `no ${SM_CONFIG_META_FROM} (it copied sm-config, nothing shows it stored the value)`;
    warn(`its driver (type ${String(sr['type'])}) reports ${reported} after vdi_update; it may not support sm-config:${SM_CONFIG_META}`);
  }
}
