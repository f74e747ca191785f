// csi-sanity's rule that each step may be repeated: deactivate and detach of a
// detached VDI, a second scan/update, a second sr_detach and sr_attach, and a
// second delete all succeed.
import type { SmCall } from '../../src/toolstack/index.js';
import { pbdPlug, pbdUnplug, srScan, srUpdate, vdiAttach, vdiDestroy, vdiDetach } from '../../src/toolstack/index.js';
import type { ScenarioContext } from '../context.js';
import type { Scenario } from '../scenario.js';

/** One call straight to the driver (no toolstack bookkeeping), under the SR lock. */
function direct(ctx: ScenarioContext, call: Omit<SmCall, 'hostRef'>) {
  return ctx.ts.mutate(ctx.srUuid, () => ctx.ts.call(ctx.env.plugin, call));
}

export const idempotency: Scenario = {
  id: 'idempotency',
  title: 'each step repeated succeeds: deactivate, detach, scan, update, sr_detach, sr_attach, delete',
  requires: ['VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH'],
  usesSr: true,
  async run(ctx) {
    const vdi = await ctx.createVdi(4n * 1024n * 1024n, 'idempotency');
    const uuid = String(vdi['uuid']);
    await ctx.step('vdi_attach', () => vdiAttach(ctx.ts, uuid, 'RW'));
    await ctx.step('vdi_detach', () => vdiDetach(ctx.ts, uuid));
    const sr = ctx.srRecord();
    const part = () => ({ ...ctx.ts.srCallPart(sr), ...ctx.ts.vdiCallPart(ctx.ts.vdiByUuid(uuid)) });
    if (ctx.has('VDI_DEACTIVATE')) await ctx.step('vdi_deactivate of a deactivated VDI', () => direct(ctx, { command: 'vdi_deactivate', ...part() }));
    await ctx.step('vdi_detach of a detached VDI', () => direct(ctx, { command: 'vdi_detach', ...part() }));

    await ctx.step('sr_scan', () => srScan(ctx.ts, ctx.srUuid));
    await ctx.step('sr_scan again', () => srScan(ctx.ts, ctx.srUuid));
    if (ctx.has('SR_UPDATE')) {
      await ctx.step('sr_update', () => srUpdate(ctx.ts, ctx.srUuid));
      await ctx.step('sr_update again', () => srUpdate(ctx.ts, ctx.srUuid));
    }

    const pbdUuid = String(ctx.ts.localPbd(sr)['uuid']);
    await ctx.step('sr_detach', () => pbdUnplug(ctx.ts, pbdUuid));
    try {
      await ctx.step('sr_detach of a detached SR', () => direct(ctx, { command: 'sr_detach', ...ctx.ts.srCallPart(sr) }));
    } finally {
      await ctx.step('sr_attach', () => pbdPlug(ctx.ts, pbdUuid));
    }
    await ctx.step('sr_attach of an attached SR', () => direct(ctx, { command: 'sr_attach', ...ctx.ts.srCallPart(sr) }));

    const record = ctx.ts.vdiByUuid(uuid);
    await ctx.step('vdi_delete', () => vdiDestroy(ctx.ts, uuid));
    await ctx.deleteMissing(record, 'vdi_delete again');
  },
};
