// vdi_resize grows to at least the size asked and refuses to shrink; vdi_delete
// removes the VDI (gone after a scan, its files gone) and deleting a VDI that
// is already gone succeeds.
import { srScan, vdiDestroy, vdiResize } from '../../src/toolstack/index.js';
import { bigOf } from '../context.js';
import type { Scenario } from '../scenario.js';

const MiB = 1024n * 1024n;

export const resize: Scenario = {
  id: 'resize',
  title: 'vdi_resize grows to >= the size asked; shrinking is refused',
  requires: ['VDI_CREATE', 'VDI_DELETE', 'VDI_RESIZE'],
  perFormat: true,
  usesSr: true,
  async run(ctx) {
    const vdi = await ctx.createVdi(4n * MiB, 'resize');
    const uuid = String(vdi['uuid']);
    const want = bigOf(vdi['virtual_size']) + MiB + 1n;
    const grown = await ctx.step(`vdi_resize to ${want}`, () => vdiResize(ctx.ts, uuid, want));
    ctx.check(bigOf(grown['virtual_size']) >= want, 'vdi_resize gave less than asked', `virtual_size >= ${want}`, `virtual_size = ${String(grown['virtual_size'])}`);
    await ctx.scan();
    const scanned = ctx.ts.vdiByUuid(uuid);
    ctx.check(bigOf(scanned['virtual_size']) >= want, 'after sr_scan the resized VDI reports less than asked', `virtual_size >= ${want}`, `virtual_size = ${String(scanned['virtual_size'])}`);
    const smaller = 2n * MiB;
    await ctx.refused(`vdi_resize shrinking to ${smaller}`, () => vdiResize(ctx.ts, uuid, smaller));
    await ctx.scan();
    const after = ctx.ts.vdiByUuid(uuid);
    ctx.check(bigOf(after['virtual_size']) >= want, 'a refused shrink changed the VDI size', `virtual_size >= ${want}`, `virtual_size = ${String(after['virtual_size'])}`);
  },
};

export const vdiDelete: Scenario = {
  id: 'vdi-delete',
  title: 'vdi_delete removes the VDI and its files; deleting a missing VDI succeeds',
  requires: ['VDI_CREATE', 'VDI_DELETE'],
  perFormat: true,
  usesSr: true,
  async run(ctx) {
    const filesBefore = ctx.files();
    const vdi = await ctx.createVdi(4n * MiB, 'delete');
    const uuid = String(vdi['uuid']);
    const location = String(vdi['location']);
    await ctx.step('vdi_delete', () => vdiDestroy(ctx.ts, uuid));
    await ctx.step('sr_scan', () => srScan(ctx.ts, ctx.srUuid));
    const back = ctx.ts.db.where('VDI', 'SR', ctx.srRecord().ref).filter((v) => String(v['uuid']) === uuid || String(v['location']) === location);
    ctx.check(back.length === 0, 'the deleted VDI is back after sr_scan (its data was not removed)', `no VDI with uuid ${uuid} or location ${location}`, back.map((v) => `${String(v['uuid'])} at ${String(v['location'])}`).join(', '));
    const extra = ctx.files().filter((f) => !filesBefore.includes(f));
    ctx.check(extra.length === 0, 'vdi_delete left files behind', 'the files vdi_create made are gone', `still there: ${extra.join(', ')}`);
    await ctx.deleteMissing(vdi, 'vdi_delete of a VDI whose data is already gone');
  },
};
