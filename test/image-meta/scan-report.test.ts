// sr_scan reports machine data in the records (sm_config image-meta and
// image-meta-from) on a file SR, with the real FileSR and smctl: a VDI the
// toolstack forgot comes back with its value; an inheriting snapshot shows its
// base; a stale report is corrected; and an `image-meta` the toolstack put in
// the record of a VDI whose image has none (no `image-meta-from`) is kept.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearOwn } from '../../src/sdk/image-meta/index.js';
import { assertBuilt, createSr, imageOf, ok, scratch, smConfig, vdiRecord, withDb, type Scratch } from '../file-sr/helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

const M1 = '{"qemu.machine-types":["q35","pc"],"qemu.min-ram-MB":1024}';
const keys = (u: string) => {
  const sm = smConfig(vdiRecord(s!, u));
  return { text: sm['image-meta'] ?? null, from: sm['image-meta-from'] ?? null };
};

describe('sr_scan reports image-meta (file SR)', () => {
  it('re-introduced VDIs carry it; snapshots show their base; stale reports are fixed; a toolstack-only key stays', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=os', 'sm-config:image-format=qcow2', `sm-config:image-meta=${M1}`]);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const base = smConfig(vdiRecord(s, v))['vhd-parent']!;
    await ok(s, ['vdi-forget', `uuid=${snap}`]);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(keys(snap)).toEqual({ text: M1, from: base });
    expect(keys(v)).toEqual({ text: M1, from: base });
    // A VDI without data whose record holds a toolstack's bare image-meta: kept by the scan.
    const d = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=data', 'sm-config:image-format=vhd']);
    withDb(s, (db) => {
      const r = db.getByUuid('VDI', d)!;
      db.set('VDI', r.ref, 'sm_config', { ...smConfig(r), 'image-meta': '{"com.example.note":"from the toolstack"}' });
    });
    // The value removed behind the driver's back: the next scan drops the stale driver report.
    await clearOwn(imageOf(s, base));
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(keys(v)).toEqual({ text: null, from: null });
    expect(keys(snap)).toEqual({ text: null, from: null });
    expect(keys(d)).toEqual({ text: '{"com.example.note":"from the toolstack"}', from: null });
  });
});
