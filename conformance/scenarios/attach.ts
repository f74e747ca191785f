// Attach/activate/deactivate/detach 20 times in a row (quicktest), and
// vdi_introduce of an existing UUID or location refused.
import { randomUUID } from 'node:crypto';
import { vdiForget } from '../../src/toolstack/index.js';
import type { Scenario } from '../scenario.js';

export const attachCycles: Scenario = {
  id: 'attach-20',
  title: 'vdi_attach/activate/deactivate/detach 20 times in a row',
  requires: ['VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH'],
  usesSr: true,
  async run(ctx) {
    const vdi = await ctx.createVdi(4n * 1024n * 1024n, 'attach cycles');
    for (let i = 1; i <= 20; i++) {
      const r = await ctx.attach(vdi, 'RW');
      ctx.check(Boolean(r.params) || Boolean(r.params_nbd), `attach #${i} gave neither params nor params_nbd`, 'a device path (params) or an NBD URI', JSON.stringify(r));
      await ctx.detach(vdi);
    }
  },
};

export const introduceDuplicate: Scenario = {
  id: 'introduce-duplicate',
  title: 'vdi_introduce of an existing UUID or location is refused',
  requires: ['VDI_CREATE', 'VDI_DELETE', 'VDI_INTRODUCE'],
  usesSr: true,
  async run(ctx) {
    const vdi = await ctx.createVdi(4n * 1024n * 1024n, 'introduce target');
    const sr = ctx.srRecord();
    const location = String(vdi['location']);
    const attempts: [string, string][] = [
      ['the existing UUID and location', String(vdi['uuid'])],
      ['the existing location with a new UUID', randomUUID()],
    ];
    for (const [what, newUuid] of attempts) {
      const before = new Set(ctx.ts.db.where('VDI', 'SR', sr.ref).map((v) => v.ref));
      // Straight to the driver: the toolstack's own uniqueness check would hide the driver's answer.
      const r = await ctx.ts
        .mutate(ctx.srUuid, () =>
          ctx.ts.call(ctx.env.plugin, { command: 'vdi_introduce', ...ctx.ts.srCallPart(sr), vdiLocation: location, vdiSmConfig: {}, newUuid }),
        )
        .then(
          (ok) => ok,
          () => undefined,
        );
      if (r !== undefined) {
        // Forget (never delete: the data is the original VDI's) whatever it introduced.
        for (const v of ctx.ts.db.where('VDI', 'SR', sr.ref)) if (!before.has(v.ref)) await vdiForget(ctx.ts, String(v['uuid']));
        ctx.fail(`vdi_introduce of ${what} was accepted`, 'vdi_introduce refused with an error', `it returned ${JSON.stringify(r.value)}`, ctx.calls(1));
      }
    }
    await ctx.scan();
    ctx.check(ctx.ts.db.getByUuid('VDI', String(vdi['uuid'])) !== undefined, 'the original VDI is gone after the refused introduces', `VDI ${String(vdi['uuid'])} still listed`, 'it is gone');
  },
};
