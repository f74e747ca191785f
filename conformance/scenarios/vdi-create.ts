// vdi_create: awkward sizes give at least the size asked for; the requested
// image format is honoured and recorded; an unsupported format and a size
// beyond the format's maximum fail and leave no trace.
import { IMAGE_FORMATS, type ImageFormat } from '../../src/driver-info.js';
import { type DbRecord, vdiCreate } from '../../src/toolstack/index.js';
import { bigOf, type ScenarioContext } from '../context.js';
import type { Scenario } from '../scenario.js';
import { ScenarioSkip } from '../types.js';

const GiB = 1024n * 1024n * 1024n;
/** Largest virtual sizes (XCP-ng cowutil getMaxImageSize): VHD 2040 GiB, QCOW2 16 TiB. */
export const FORMAT_MAX: Partial<Record<ImageFormat, bigint>> = { vhd: 2040n * GiB, qcow2: 16n * 1024n * GiB };

export const vdiCreateSizes: Scenario = {
  id: 'vdi-create',
  title: 'vdi_create with awkward sizes: virtual size >= requested, image-format recorded',
  requires: ['VDI_CREATE', 'VDI_DELETE'],
  perFormat: true,
  usesSr: true,
  async run(ctx) {
    for (const size of ctx.env.config.sizes) {
      const vdi = await ctx.createVdi(size, `size ${size}`);
      const got = bigOf(vdi['virtual_size']);
      ctx.check(got >= size, `vdi_create of ${size} bytes gave a smaller VDI`, `virtual_size >= ${size}`, `virtual_size = ${got}`);
      ctx.check(String(vdi['location'] ?? '') !== '', 'vdi_create gave a VDI without a location', 'a non-empty location', JSON.stringify(vdi['location']));
      if (ctx.format !== undefined) {
        const recorded = (vdi['sm_config'] as Record<string, string>)['image-format'];
        ctx.check(recorded === ctx.format, `image-format ${ctx.format} not recorded in sm_config`, `sm_config:image-format=${ctx.format}`, `sm_config=${JSON.stringify(vdi['sm_config'])}`);
      }
    }
  },
};

/** Creates with `smConfig`, which must fail; checks nothing is left (VDI count after scan, files). */
async function mustFailWithoutTrace(ctx: ScenarioContext, size: bigint, smConfig: Record<string, string>, what: string): Promise<void> {
  await ctx.scan();
  const before = ctx.managedVdis().length;
  const filesBefore = ctx.files();
  let made: DbRecord | undefined;
  let error: unknown;
  try {
    made = await vdiCreate(ctx.ts, { srUuid: ctx.srUuid, nameLabel: `conformance ${what}`, virtualSize: size, smConfig });
  } catch (e) {
    error = e;
  }
  if (made) {
    ctx.track(made);
    ctx.fail(`${what} was accepted`, `vdi_create refused with an error`, `it created VDI ${String(made['uuid'])} (virtual_size ${String(made['virtual_size'])}, sm_config ${JSON.stringify(made['sm_config'])})`, ctx.calls(1));
  }
  void error;
  await ctx.scan();
  const after = ctx.managedVdis();
  ctx.check(after.length === before, `${what}: a failed vdi_create left a VDI behind`, `${before} VDIs after sr_scan`, `${after.length} VDIs: ${after.map((v) => String(v['uuid'])).join(', ')}`);
  const filesAfter = ctx.files();
  const extra = filesAfter.filter((f) => !filesBefore.includes(f));
  ctx.check(extra.length === 0, `${what}: a failed vdi_create left files behind`, 'no new file in the SR directory', `new: ${extra.join(', ')}`);
}

export const vdiCreateUnsupportedFormat: Scenario = {
  id: 'vdi-create-unsupported-format',
  title: 'vdi_create with an image format the driver does not declare fails and leaves no trace',
  requires: ['VDI_CREATE'],
  usesSr: true,
  async run(ctx) {
    const declared = ctx.env.declared?.formats ?? [];
    if (declared.length === 0) throw new ScenarioSkip('driver declares no supported_image_formats (the driver chooses the format)');
    const candidates = [...IMAGE_FORMATS.filter((f) => !declared.includes(f)), 'vmdk'];
    for (const f of candidates) await mustFailWithoutTrace(ctx, 4n * 1024n * 1024n, { 'image-format': f }, `vdi_create with image-format=${f}`);
  },
};

export const vdiCreateOversize: Scenario = {
  id: 'vdi-create-oversize',
  title: "vdi_create beyond the format's maximum size fails and leaves no trace",
  requires: ['VDI_CREATE'],
  perFormat: true,
  usesSr: true,
  async run(ctx) {
    if (ctx.format === undefined) throw new ScenarioSkip('driver declares no formats: no known maximum size');
    const max = FORMAT_MAX[ctx.format];
    if (max === undefined) throw new ScenarioSkip(`${ctx.format} images have no format maximum`);
    await mustFailWithoutTrace(ctx, max + 1n, ctx.smConfigFor(ctx.format), `vdi_create of ${ctx.format} ${max + 1n} bytes (maximum ${max})`);
  },
};

