// Several vdi_create and vdi_snapshot calls on one SR at the same time, sent
// straight to the driver (no toolstack serialisation), then a scan that must
// show each result exactly once with unique locations.
import type { DbRecord } from '../../src/toolstack/index.js';
import { describeError } from '../context.js';
import type { Scenario } from '../scenario.js';

const CREATES = 4;
const SNAPSHOTS = 2;

export const concurrency: Scenario = {
  id: 'concurrency',
  title: `${CREATES} vdi_create then ${SNAPSHOTS} vdi_snapshot at once on one SR; a consistent scan`,
  requires: ['VDI_CREATE', 'VDI_DELETE'],
  usesSr: true,
  async run(ctx) {
    await ctx.scan();
    const before = ctx.managedVdis().length;
    const sr = ctx.srRecord();
    const smConfig = ctx.smConfigFor(ctx.format ?? ctx.env.defaultFormat);
    const created = await Promise.allSettled(
      Array.from({ length: CREATES }, (_, i) =>
        ctx.ts.call(ctx.env.plugin, {
          command: 'vdi_create',
          args: [String((i + 1) * 1024 * 1024), `conformance concurrent ${i}`, '', '', 'false', '19700101T00:00:00Z', '', 'false'],
          ...ctx.ts.srCallPart(sr),
          vdiType: 'user',
          vdiSmConfig: smConfig,
        }),
      ),
    );
    const made: DbRecord[] = [];
    const problems: string[] = [];
    for (const r of created) {
      if (r.status === 'rejected') {
        problems.push(`vdi_create failed: ${describeError(r.reason)}`);
        continue;
      }
      const uuid = String((r.value.value as Record<string, unknown>)['uuid']);
      const rec = ctx.ts.db.getByUuid('VDI', uuid);
      if (!rec) problems.push(`vdi_create returned ${uuid} but did not introduce it`);
      else {
        ctx.track(rec);
        made.push(rec);
      }
    }
    if (problems.length > 0) ctx.fail(`concurrent vdi_create: ${problems[0]}`, `${CREATES} concurrent vdi_create calls succeed`, problems.join('\n'), ctx.calls(CREATES));
    let snaps = 0;
    if (ctx.has('VDI_SNAPSHOT')) {
      const shot = await Promise.allSettled(
        made.slice(0, SNAPSHOTS).map((src) =>
          ctx.ts.call(ctx.env.plugin, { command: 'vdi_snapshot', ...ctx.ts.srCallPart(sr), ...ctx.ts.vdiCallPart(src), driverParams: {} }),
        ),
      );
      for (const r of shot) {
        if (r.status === 'rejected') {
          problems.push(`vdi_snapshot failed: ${describeError(r.reason)}`);
          continue;
        }
        const location = String((r.value.value as Record<string, unknown>)['location']);
        const rec = ctx.ts.db.where('VDI', 'SR', sr.ref).find((v) => String(v['location']) === location);
        if (!rec) problems.push(`vdi_snapshot returned location ${location} but no VDI has it`);
        else {
          ctx.track(rec);
          snaps++;
        }
      }
      if (problems.length > 0) ctx.fail(`concurrent vdi_snapshot: ${problems[0]}`, `${SNAPSHOTS} concurrent vdi_snapshot calls succeed`, problems.join('\n'), ctx.calls(SNAPSHOTS));
    }
    await ctx.scan();
    const all = ctx.managedVdis();
    const expected = before + made.length + snaps;
    ctx.check(all.length === expected, 'the scan after concurrent creates/snapshots is inconsistent', `${expected} VDIs (${before} + ${made.length} created + ${snaps} snapshots)`, `${all.length} VDIs`);
    for (const m of made)
      ctx.check(all.filter((v) => v['uuid'] === m['uuid']).length === 1, `VDI ${String(m['uuid'])} is not listed exactly once after sr_scan`, 'listed once', `listed ${all.filter((v) => v['uuid'] === m['uuid']).length} times`);
    const locations = ctx.ts.db.where('VDI', 'SR', sr.ref).map((v) => String(v['location']));
    const dupes = locations.filter((l, i) => locations.indexOf(l) !== i);
    ctx.check(dupes.length === 0, 'two VDIs share a location after concurrent operations', 'unique locations', `duplicated: ${dupes.join(', ')}`);
  },
};
