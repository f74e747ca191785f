// SR lifecycle on an SR of its own: create (with attach and scan), scan,
// update, probe, detach, re-attach, delete; delete refused while a VDI remains.
import { DriverFaultError, pbdPlug, pbdUnplug, srCreate, srDestroy, srProbe, srScan, srUpdate, vdiCreate, vdiDestroy } from '../../src/toolstack/index.js';
import { describeError } from '../context.js';
import type { Scenario } from '../scenario.js';

export const srLifecycle: Scenario = {
  id: 'sr-lifecycle',
  title: 'SR create, attach, scan, update, probe, detach, re-attach, delete (refused while not empty)',
  usesSr: false,
  async run(ctx) {
    const ts = ctx.ts;
    const type = ctx.env.plugin.type;
    const deviceConfig = ctx.env.config.deviceConfig;
    const warningsBefore = ts.warnings.length;
    const sr = await ctx.step('sr_create (+ sr_attach, sr_scan)', () => srCreate(ts, { type, nameLabel: 'conformance lifecycle', deviceConfig }));
    const srUuid = String(sr['uuid']);
    ctx.res.add(`SR ${srUuid}`, async () => {
      if (!ts.db.getByUuid('SR', srUuid)) return;
      const pbd = ts.localPbd(ts.srByUuid(srUuid));
      await pbdUnplug(ts, String(pbd['uuid']));
      await srDestroy(ts, srUuid);
    });
    if (ts.warnings.length > warningsBefore)
      ctx.fail('the scan after sr_attach failed', 'sr_scan succeeds right after sr_create/sr_attach', ts.warnings.slice(warningsBefore).join('\n'));
    const pbdUuid = String(ts.localPbd(sr)['uuid']);
    await ctx.step('sr_scan', () => srScan(ts, srUuid));
    if (ctx.has('SR_UPDATE')) await ctx.step('sr_update', () => srUpdate(ts, srUuid));
    if (ctx.has('SR_PROBE')) {
      const xml = await ctx.step('sr_probe', () => srProbe(ts, { type, deviceConfig }));
      ctx.check(xml.trim().startsWith('<'), 'sr_probe did not return an XML document', 'an XML document (string)', JSON.stringify(xml.slice(0, 200)));
    }

    if (ctx.has('VDI_CREATE') && ctx.has('VDI_DELETE')) {
      const vdi = await ctx.step('vdi_create', () => vdiCreate(ts, { srUuid, nameLabel: 'conformance keep-sr-busy', virtualSize: 4n * 1024n * 1024n }));
      const vdiUuid = String(vdi['uuid']);
      ctx.res.add(`VDI ${vdiUuid}`, async () => {
        if (!ts.db.getByUuid('VDI', vdiUuid)) return;
        const p = ts.localPbd(ts.srByUuid(srUuid));
        if (!p['currently_attached']) await pbdPlug(ts, String(p['uuid']));
        await vdiDestroy(ts, vdiUuid);
      });
      await ctx.step('sr_detach', () => pbdUnplug(ts, pbdUuid));
      let refusal: unknown;
      try {
        await srDestroy(ts, srUuid);
      } catch (e) {
        refusal = e;
      }
      if (refusal === undefined)
        ctx.fail('sr_delete succeeded while a VDI remained', 'sr_delete refused with SRNotEmpty (fault 39, SR_NOT_EMPTY)', 'sr_delete succeeded', ctx.calls(1));
      const notEmpty = refusal instanceof DriverFaultError && (refusal.faultCode === 39 || refusal.code === 'SR_NOT_EMPTY');
      ctx.check(notEmpty, 'sr_delete of a non-empty SR failed with the wrong error', 'fault 39 (SRNotEmpty) → SR_NOT_EMPTY', describeError(refusal));
      await ctx.step('sr_attach (re-attach)', () => pbdPlug(ts, pbdUuid));
      await ctx.step('sr_scan', () => srScan(ts, srUuid));
      ctx.check(ts.db.getByUuid('VDI', vdiUuid) !== undefined, 'the VDI vanished after a refused sr_delete and re-attach', `VDI ${vdiUuid} still listed after sr_scan`, 'it is gone');
      await ctx.step('vdi_delete', () => vdiDestroy(ts, vdiUuid));
    }

    await ctx.step('sr_detach', () => pbdUnplug(ts, pbdUuid));
    await ctx.step('sr_attach (re-attach)', () => pbdPlug(ts, pbdUuid));
    await ctx.step('sr_scan after re-attach', () => srScan(ts, srUuid));
    await ctx.step('sr_detach', () => pbdUnplug(ts, pbdUuid));
    await ctx.step('sr_delete', () => srDestroy(ts, srUuid));
  },
};
