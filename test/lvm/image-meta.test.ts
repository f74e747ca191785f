// Machine data (docs/image-meta.md) on the `lvm` driver, with real LVM on loop
// devices through smctl and the real LVMSR: the string in LV tags (one
// lvchange per change), long values in the MGT volume with a marker tag,
// inheritance through the VHD/qcow2 chain that snapshots build, clone,
// delete, refusals that change nothing (VG seqno unchanged), and the writer
// killed between its steps (SM_FIST) leaving the old or the new value.
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DRIVER_INFO } from '../../drivers/lvm/info.js';
import {
  CHUNK, decodeTags, effectiveValue, encodeTags, isImageMetaTag, LVM_TAG_MAX, TAG_BUDGET,
} from '../../src/sdk/lvm-sr/image-meta.js';
import { lvmSrHandlers } from '../../src/sdk/lvm-sr/handlers.js';
import { registerLvmStore } from '../../src/sdk/lvm-sr/image-meta-target.js';
import { readEffective } from '../../src/sdk/image-meta/index.js';
import { readInventory } from '../../src/sdk/lvm-sr/inventory.js';
import { openLvmSr } from '../../src/sdk/lvm-sr/sr.js';
import { deviceMapperAvailable, lvchangeArgv, vgs } from '../../src/sdk/tools/lvm.js';
import { assertBuilt, ok, ROOT, smConfig, smctl, vdiRecord, vdisOfSr, withDb } from '../file-sr/helpers.js';
import { loopDevice } from '../ext/helpers.js';
import { scratch } from '../file-sr/helpers.js';
import { createLvmSr, deviceOf, lvsOf, lvmScratch, type LvmScratch, useProcessEnv } from './helpers.js';
import { byUuid, startXapi } from './xapi.js';
import { recordSteps, type GoldenCase } from './golden.js';

vi.setConfig({ testTimeout: 400_000 });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

const M1 = '{"qemu.machine-types":["q35","pc"],"qemu.min-ram-MB":1024}';
const M2 = '{"com.example.role":"db","qemu.min-ram-MB":2048}';
/** Over TAG_BUDGET once base64-encoded: lives in MGT. */
const LONG = JSON.stringify({ 'com.example.notes': 'x'.repeat(3000) });
/** Just inside the budget: three tags of up to ~1000 characters each. */
const MEDIUM = JSON.stringify({ 'com.example.notes': 'm'.repeat(2100) });

async function scr(): Promise<LvmScratch> {
  const s = await lvmScratch([256]);
  cleanups.push(s.cleanup);
  return s;
}

async function create(s: LvmScratch, sr: string, format: string, meta?: string): Promise<string> {
  return ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', `name-label=${format}`, `sm-config:image-format=${format}`, ...(meta ? [`sm-config:image-meta=${meta}`] : [])]);
}

/** Leave a request in the record, as a toolstack does, for vdi_update to apply. */
function request(s: LvmScratch, v: string, value: string): void {
  withDb(s, (db) => {
    const r = db.getByUuid('VDI', v)!;
    db.set('VDI', r.ref, 'sm_config', { ...smConfig(r), 'image-meta-set': value });
  });
}

async function metaTags(s: LvmScratch, sr: string): Promise<Map<string, string[]>> {
  return new Map((await lvsOf(s, sr)).map((l) => [l.lvName, l.tags.filter(isImageMetaTag)]));
}

async function mgtEntries(s: LvmScratch, sr: string): Promise<Record<string, string>> {
  const inv = await readInventory(openLvmSr(sr, { device: deviceOf(s) }));
  return inv.mgt?.content?.image_meta ?? {};
}

async function seqno(s: LvmScratch, sr: string): Promise<number> {
  return (await vgs({ vg: `VG_XenStorage-${sr}` }, { devices: [deviceOf(s)] }))[0]!.seqno;
}

const reportOf = (s: LvmScratch, v: string) => {
  const sm = smConfig(vdiRecord(s, v));
  return { text: sm['image-meta'] ?? null, from: sm['image-meta-from'] ?? null };
};

async function updated(s: LvmScratch, v: string) {
  await ok(s, ['vdi-update', `uuid=${v}`]);
  return reportOf(s, v);
}

describe('lvm image-meta: tag encoding', () => {
  it('round-trips any string within the budget in tags LVM accepts; longer is null (MGT)', () => {
    for (const text of [M1, '{"com.example.u":"é ü \\u0000 ✓ 𝄞"}', JSON.stringify({ 'com.example.a': 'y'.repeat(2100) })]) {
      const tags = encodeTags(text, 7)!;
      expect(tags).not.toBeNull();
      for (const t of tags) {
        expect(t.length).toBeLessThanOrEqual(LVM_TAG_MAX);
        expect(t).toMatch(/^[A-Za-z0-9_+.][A-Za-z0-9_+.\-/=!:&#]*$/);
        expect(() => lvchangeArgv({ vg: 'vg', name: 'lv', addTags: [t] })).not.toThrow();
      }
      // Order of tags as LVM reports them does not matter.
      expect(decodeTags([...tags].reverse())).toEqual({ kind: 'tags', gen: 7, text });
    }
    expect(encodeTags(LONG, 1)).toBeNull();
    expect(Buffer.from(LONG).toString('base64').length).toBeGreaterThan(TAG_BUDGET);
    expect(encodeTags(JSON.stringify({ 'com.example.a': 'y'.repeat(2100) }), 1)!.length).toBe(3);
    expect(CHUNK + 'image-meta:999999999999999:999:999:'.length).toBeLessThanOrEqual(LVM_TAG_MAX);
  });

  it('reads the newest complete generation; a torn or corrupt set is no value, never a mix', () => {
    const a = encodeTags(M1, 1)!;
    const b = encodeTags(JSON.stringify({ 'com.example.a': 'z'.repeat(1500) }), 2)!;
    expect(decodeTags(['hidden', ...a, ...b])).toMatchObject({ kind: 'tags', gen: 2 });
    expect(decodeTags([...a, ...b.slice(1)])).toEqual({ kind: 'tags', gen: 1, text: M1 });
    expect(decodeTags(['image-meta:3:0:1:!!!!'])).toEqual({ kind: 'none', gen: 0 });
    expect(decodeTags(['image-meta:3:0:1:/w=='])).toEqual({ kind: 'none', gen: 3 }); // 0xff: not UTF-8
    expect(decodeTags(['image-meta:4:mgt:0123456789abcdef'])).toEqual({ kind: 'mgt', gen: 4, ref: '0123456789abcdef' });
    expect(decodeTags(['hidden'])).toEqual({ kind: 'none', gen: 0 });
  });
});

describe.each(['vhd', 'qcow2', 'raw'] as const)('lvm image-meta: %s VDIs', (format) => {
  it('vdi-create stores it in the LV tags (one lvcreate); vdi-update and sr-scan report it; set, long (MGT) and back, inherit', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await create(s, sr, format, M1);
    const lv = `${format === 'vhd' ? 'VHD' : format === 'qcow2' ? 'QCOW2' : 'LV'}-${v}`;
    expect(decodeTags((await metaTags(s, sr)).get(lv)!)).toMatchObject({ kind: 'tags', text: M1 });
    expect(reportOf(s, v)).toEqual({ text: M1, from: v });
    // Forgotten by the toolstack: sr-scan introduces it with its machine data.
    await ok(s, ['vdi-forget', `uuid=${v}`]);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(reportOf(s, v)).toEqual({ text: M1, from: v });
    // Long value: MGT entry + marker tag; the one lvchange moves it.
    const before = await seqno(s, sr);
    request(s, v, LONG);
    expect(await updated(s, v)).toEqual({ text: LONG, from: v });
    expect(await seqno(s, sr)).toBe(before + 1);
    const tags = (await metaTags(s, sr)).get(lv)!;
    expect(tags).toHaveLength(1);
    expect(tags[0]).toMatch(/^image-meta:2:mgt:[0-9a-f]{16}$/);
    expect(Object.values(await mgtEntries(s, sr))).toEqual([LONG]);
    // Back into tags (three of them, each accepted by LVM): the MGT entry is gone.
    request(s, v, MEDIUM);
    expect(await updated(s, v)).toEqual({ text: MEDIUM, from: v });
    const three = (await metaTags(s, sr)).get(lv)!;
    expect(three).toHaveLength(3);
    expect(Math.max(...three.map((t) => t.length))).toBeLessThanOrEqual(LVM_TAG_MAX);
    expect(decodeTags(three)).toMatchObject({ kind: 'tags', gen: 3, text: MEDIUM });
    expect(await mgtEntries(s, sr)).toEqual({});
    request(s, v, M2);
    expect(await updated(s, v)).toEqual({ text: M2, from: v });
    expect(decodeTags((await metaTags(s, sr)).get(lv)!)).toMatchObject({ kind: 'tags', gen: 4, text: M2 });
    request(s, v, 'inherit');
    expect(await updated(s, v)).toEqual({ text: null, from: null });
    expect((await metaTags(s, sr)).get(lv)).toEqual([]);
  });
});

describe('lvm image-meta: chains, snapshot, clone, delete', () => {
  it('inheritance through a three-deep chain of snapshots; each snapshot keeps the value its source had; clone inherits', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await create(s, sr, 'vhd', M1);
    const s1 = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const b1 = smConfig(vdiRecord(s, a))['vhd-parent']!;
    // A's LV (with its tags) is base B1 now; A and the snapshot inherit from it.
    expect(reportOf(s, a)).toEqual({ text: M1, from: b1 });
    expect(reportOf(s, s1)).toEqual({ text: M1, from: b1 });
    request(s, a, LONG);
    expect(await updated(s, a)).toEqual({ text: LONG, from: a });
    const s2 = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const b2 = smConfig(vdiRecord(s, a))['vhd-parent']!;
    const s3 = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const b3 = smConfig(vdiRecord(s, a))['vhd-parent']!;
    // Chain A → B3 (no own value) → B2 (LONG, in MGT) → B1 (M1).
    expect(await updated(s, a)).toEqual({ text: LONG, from: b2 });
    expect(reportOf(s, s3)).toEqual({ text: LONG, from: b2 });
    expect(await updated(s, s2)).toEqual({ text: LONG, from: b2 });
    expect(await updated(s, s1)).toEqual({ text: M1, from: b1 });
    expect(smConfig(vdiRecord(s, b3))['vhd-parent']).toBe(b2);
    // A new own value on A does not change what the snapshots read.
    request(s, a, M2);
    expect(await updated(s, a)).toEqual({ text: M2, from: a });
    expect(await updated(s, s3)).toEqual({ text: LONG, from: b2 });
    // Clone: the clone and the source read the same value, from their new common base.
    const c = await ok(s, ['vdi-clone', `uuid=${a}`]);
    const b4 = smConfig(vdiRecord(s, a))['vhd-parent']!;
    expect(reportOf(s, c)).toEqual({ text: M2, from: b4 });
    expect(await updated(s, a)).toEqual({ text: M2, from: b4 });
    // Inherit on the clone: it still reads the base's value; sr-scan agrees.
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(reportOf(s, c)).toEqual({ text: M2, from: b4 });
    expect(Object.values(await mgtEntries(s, sr))).toEqual([LONG]);
  });

  it('delete: a long value\'s MGT entry goes with the last VDI that uses it; sr-scan drops entries no LV points at', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await create(s, sr, 'qcow2', LONG);
    expect(reportOf(s, v)).toEqual({ text: LONG, from: v });
    expect(Object.values(await mgtEntries(s, sr))).toEqual([LONG]);
    const c = await ok(s, ['vdi-clone', `uuid=${v}`]);
    await ok(s, ['vdi-destroy', `uuid=${c}`]);
    // The base holds the value for v: kept.
    expect(Object.values(await mgtEntries(s, sr))).toEqual([LONG]);
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    expect((await lvsOf(s, sr)).map((l) => l.lvName)).toEqual(['MGT']);
    expect(await mgtEntries(s, sr)).toEqual({});
    // An LV removed by hand leaves its entry behind: the next scan drops it.
    const w = await create(s, sr, 'raw', LONG);
    await execa('lvremove', ['--devices', deviceOf(s), '--driverloaded', 'n', '-f', `VG_XenStorage-${sr}/LV-${w}`], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    expect(Object.keys(await mgtEntries(s, sr))).toHaveLength(1);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(await mgtEntries(s, sr)).toEqual({});
    expect(vdisOfSr(s, sr)).toEqual([]);
  });
});

describe('lvm image-meta: refused input changes nothing', () => {
  it('vdi-create with a bad value: fault names the key, no LV, no MGT entry, VG untouched; a bad request on vdi-update leaves tags as they were', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const before = await seqno(s, sr);
    // The driver's own check (smctl checks first too, so call the handler in-process).
    cleanups.push(useProcessEnv(s.env));
    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    for (const [bad, why] of [
      ['{"qemu.min-ram-MB":1,"qemu.min-ram-MB":2}', /duplicate key "qemu\.min-ram-MB"/],
      ['{"qemu.bogus":1}', /key "qemu\.bogus".*not in the key registry/],
      [JSON.stringify({ 'com.example.n': 'x'.repeat(5000) }), /at most 4096 bytes/],
      ['[1,2]', /must be a JSON object/],
      ['{"com.example.a":1', /JSON|end of input|unexpected/i],
    ] as const) {
      const req = { sr_uuid: sr, sr_ref: f.srRef, device_config: { device: deviceOf(s) }, host_ref: 'OpaqueRef:h', args: [], raw: {}, command: 'vdi_create', vdi_uuid: '0000aaaa-0000-4000-8000-000000000001', vdi_sm_config: { 'image-format': 'vhd', 'image-meta': bad }, size: 8 * 1024 * 1024, name_label: 'x', name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false };
      const e = await Promise.resolve(h.vdi_create!(req as never, f.ctx)).then(() => null, (x: unknown) => x as Error & { key?: string });
      expect(e, `image-meta=${bad.slice(0, 40)} must be refused`).not.toBeNull();
      expect(e!.message).toMatch(/sm_config:image-meta is refused/);
      expect(e!.message).toMatch(why);
      expect(e!.key).toBe('VDICreate');
    }
    expect(f.vdis().size).toBe(0);
    expect(await seqno(s, sr)).toBe(before);
    // smctl refuses them as well, before calling the driver.
    for (const [bad, why] of [
      ['{"qemu.min-ram-MB":1,"qemu.min-ram-MB":2}', /duplicate key "qemu\.min-ram-MB"/],
      ['{"qemu.bogus":1}', /key "qemu\.bogus".*not in the key registry/],
      [JSON.stringify({ 'com.example.n': 'x'.repeat(5000) }), /at most 4096 bytes/],
      ['[1,2]', /must be a JSON object/],
    ] as const) {
      const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=x', 'sm-config:image-format=vhd', `sm-config:image-meta=${bad}`]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(why);
    }
    expect(await seqno(s, sr)).toBe(before);
    expect((await lvsOf(s, sr)).map((l) => l.lvName)).toEqual(['MGT']);
    expect(vdisOfSr(s, sr)).toEqual([]);
    const v = await create(s, sr, 'vhd', M1);
    const tags = await metaTags(s, sr);
    const seq = await seqno(s, sr);
    request(s, v, '{"qemu.min-ram-MB":"lots"}');
    const r = await smctl(s, ['vdi-update', `uuid=${v}`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/image-meta-set is refused.*qemu\.min-ram-MB/);
    expect(await seqno(s, sr)).toBe(seq);
    expect(await metaTags(s, sr)).toEqual(tags);
    expect(await mgtEntries(s, sr)).toEqual({});
  });
});

describe('lvm image-meta: the writer killed between its steps leaves the old or the new value', () => {
  // [point, old value, new value, which one a reader sees after the crash]
  const CASES = [
    ['lvm-image-meta-mgt-put', M1, LONG, 'old'],
    ['lvm-image-meta-mgt-put', LONG, JSON.stringify({ 'com.example.notes': 'w'.repeat(3000) }), 'old'],
    ['lvm-image-meta-tags', M1, M2, 'new'],
    ['lvm-image-meta-tags', LONG, M2, 'new'],
    ['lvm-image-meta-tags', M1, LONG, 'new'],
  ] as const;
  const long = (t: string) => (t.length > 200 ? 'long' : 'short');
  for (const format of ['vhd', 'qcow2', 'raw'] as const) {
    it(`${format}: ${CASES.map(([p, o, n, w]) => `${p} ${long(o)}→${long(n)} sees ${w}`).join('; ')}; sr-scan then leaves no stray MGT entry`, async () => {
      const s = await scr();
      const sr = await createLvmSr(s);
      const seen: [string, string][] = [];
      for (const [point, oldV, newV, sees] of CASES) {
        const v = await create(s, sr, format, oldV);
        request(s, v, newV);
        const r = await smctl(s, ['vdi-update', `uuid=${v}`], { SM_FIST: point });
        expect(r.exitCode, `vdi-update with SM_FIST=${point} should have crashed`).not.toBe(0);
        const want = sees === 'old' ? oldV : newV;
        // What the LV says right after the crash (no recovery has run).
        const inv = await readInventory(openLvmSr(sr, { device: deviceOf(s) }));
        expect(effectiveValue(inv, inv.mgt!.content!, v).text, `${point} ${long(oldV)}→${long(newV)}`).toBe(want);
        seen.push([v, want]);
      }
      // sr-scan reports what the LVs hold and drops the MGT entries a killed writer left.
      await ok(s, ['sr-scan', `uuid=${sr}`]);
      for (const [v, want] of seen) expect(reportOf(s, v)).toEqual({ text: want, from: v });
      const strays = async () => {
        const referenced = [...(await metaTags(s, sr)).values()].flat().filter((t) => t.includes(':mgt:')).map((t) => t.split(':')[3]);
        expect(referenced.length).toBeGreaterThan(0);
        expect(Object.keys(await mgtEntries(s, sr)).sort()).toEqual(referenced.sort());
      };
      await strays();
      // smctl kept the failed call's request (it rolls back the call's writes): retried, it completes.
      for (const [i, [v]] of seen.entries()) expect(await updated(s, v)).toEqual({ text: CASES[i]![2], from: v });
      await strays();
    });
  }
});

describe('lvm image-meta: bin/image-meta --sr-path <PV> --vdi <uuid>', () => {
  const BIN = join(ROOT, 'bin', 'image-meta');
  const run = async (s: LvmScratch, args: string[]) => {
    const r = await execa(process.execPath, [BIN, ...args], { env: { ...process.env, ...s.env }, reject: false, stripFinalNewline: false });
    return { code: r.exitCode ?? -1, out: String(r.stdout), err: String(r.stderr) };
  };
  it('get, set (keys, whole, long → MGT), unset --own, dump on a snapshot chain; the driver reports what the CLI wrote; refusals change nothing', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const dev = deviceOf(s);
    const a = await create(s, sr, 'qcow2', M1);
    await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const b = smConfig(vdiRecord(s, a))['vhd-parent']!;
    const at = ['--sr-path', dev, '--vdi', a];
    expect(await run(s, ['get', ...at])).toMatchObject({ code: 0, out: `${M1}\n` });
    expect(await run(s, ['get', ...at, '--own'])).toMatchObject({ code: 3 });
    expect(await run(s, ['get', ...at, 'qemu.min-ram-MB'])).toMatchObject({ code: 0, out: '1024\n' });
    const dump = JSON.parse((await run(s, ['dump', ...at, '--json'])).out);
    expect(dump).toMatchObject({ from: { path: `/dev/VG_XenStorage-${sr}/QCOW2-${b}`, format: 'qcow2' }, depth: 1 });
    expect(dump.chain.map((l: { own: string | null; store: string }) => [l.own, l.store])).toEqual([[null, 'lv-tags'], [M1, 'lv-tags']]);
    // Set a key: A gets its own copy (effective + change), in its tags; the base keeps M1.
    expect((await run(s, ['set', ...at, 'com.example.role=web'])).code).toBe(0);
    const own = JSON.stringify({ ...JSON.parse(M1), 'com.example.role': 'web' });
    expect(await run(s, ['get', ...at, '--own'])).toMatchObject({ code: 0, out: `${own}\n` });
    expect(await updated(s, a)).toEqual({ text: own, from: a });
    expect(decodeTags((await metaTags(s, sr)).get(`QCOW2-${b}`)!)).toMatchObject({ text: M1 });
    // Refused: an unregistered qemu. key; nothing changed (VG seqno).
    const seq = await seqno(s, sr);
    const bad = await run(s, ['set', ...at, 'qemu.nonsense=1']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/key "qemu\.nonsense".*not in the key registry/);
    expect(await seqno(s, sr)).toBe(seq);
    // Whole long value: MGT; the driver reads the same.
    expect((await run(s, ['set', ...at, '--json', LONG])).code).toBe(0);
    expect(Object.values(await mgtEntries(s, sr))).toEqual([LONG]);
    expect(await updated(s, a)).toEqual({ text: LONG, from: a });
    expect(JSON.parse((await run(s, ['dump', ...at, '--json'])).out).chain[0]).toMatchObject({ own: LONG, store: 'mgt' });
    // Drop the own value: inherits M1 again, MGT entry gone.
    expect((await run(s, ['unset', ...at, '--own'])).code).toBe(0);
    expect(await run(s, ['get', ...at])).toMatchObject({ code: 0, out: `${M1}\n` });
    expect(await mgtEntries(s, sr)).toEqual({});
    // The generic library on an attached VDI's device node: the chain is walked through the
    // active LVs, each link's own value read by the LV-tag store.
    const path = (/params \( RO\)\s*: (\S+)/.exec(await ok(s, ['vdi-attach', `uuid=${a}`])) ?? [])[1]!;
    expect(path).toBe(`/dev/VG_XenStorage-${sr}/QCOW2-${a}`);
    try {
      registerLvmStore();
      const eff = await readEffective({ path, format: 'qcow2' }, { full: true });
      expect(eff).toMatchObject({ text: M1, depth: 1, from: { path: `/dev/VG_XenStorage-${sr}/QCOW2-${b}` } });
      expect(eff.chain.map((l) => [l.store, l.own])).toEqual([['lv-tags', null], ['lv-tags', M1]]);
    } finally {
      await ok(s, ['vdi-detach', `uuid=${a}`]);
    }
    // Not a VDI of this SR / not an SR device.
    const none = await run(s, ['get', '--sr-path', dev, '--vdi', '00000000-0000-4000-8000-000000000000']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/has no LV \(VHD-, QCOW2- or LV-00000000-0000-4000-8000-000000000000\)/);
  });
});

// ---------------------------------------------------------------- golden argv

const SR = '7d2e4f6a-1b3c-4d5e-8f90-a1b2c3d4e5f6';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'golden-argv-image-meta.yaml');

describe('lvm image-meta: golden argv', () => {
  it.skipIf(deviceMapperAvailable())('vdi_create with image-meta, vdi_update with a request (short, long, inherit) match test/lvm/fixtures/golden-argv-image-meta.yaml', async () => {
    const loop = await loopDevice(160);
    cleanups.push(loop.cleanup);
    const sc = scratch();
    cleanups.push(sc.cleanup);
    cleanups.push(useProcessEnv(sc.env));
    const dev = loop.device;
    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev }, host_ref: 'OpaqueRef:h', args: [], raw: {}, session_ref: 'OpaqueRef:s' };
    const U = 'bbbbbbbb-0000-4000-8000-000000000001';
    // Unlike argvNormaliser: the VDI uuid is fixed and stays literal; MGT references are random.
    const norm = (argv: string[]) => argv.map((a, i) =>
      ['--offset', '--sizelimit'].includes(argv[i - 1] ?? '') ? '<N>' : a.replaceAll(dev, '<DEV>').replaceAll(SR, '<SR>').replace(/:mgt:[0-9a-f]{16}$/, ':mgt:<REF>').replace(/^\/dev\/loop\d+$/, '<LOOP>'));
    const setReq = async (value: string) => {
      const [ref, rec] = byUuid(f, U)!;
      await f.ctx.xapi.VDI.add_to_sm_config(ref, 'image-meta-set', value);
      void rec;
      return { ...base, command: 'vdi_update', vdi_uuid: U, vdi_location: U, vdi_ref: ref };
    };
    const steps: [string, () => Promise<unknown>][] = [
      ['sr_create', () => h.sr_create!({ ...base, command: 'sr_create', size: 0 } as never, f.ctx) as Promise<unknown>],
      ['sr_attach', () => h.sr_attach!({ ...base, command: 'sr_attach' } as never, f.ctx) as Promise<unknown>],
      ['vdi_create raw with image-meta', () => h.vdi_create!({ ...base, command: 'vdi_create', vdi_uuid: U, vdi_sm_config: { 'image-format': 'raw', 'image-meta': M1 }, size: 8 * 1024 * 1024, name_label: 'm', name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false } as never, f.ctx) as Promise<unknown>],
      ['vdi_update image-meta-set short', async () => h.vdi_update!((await setReq(M2)) as never, f.ctx)],
      ['vdi_update image-meta-set long', async () => h.vdi_update!((await setReq(LONG)) as never, f.ctx)],
      ['vdi_update image-meta-set inherit', async () => h.vdi_update!((await setReq('inherit')) as never, f.ctx)],
      ['sr_scan', () => h.sr_scan!({ ...base, command: 'sr_scan' } as never, f.ctx) as Promise<unknown>],
    ];
    let actual: GoldenCase[];
    try {
      actual = await recordSteps(steps, norm);
    } finally {
      await execa('vgremove', ['--devices', dev, '--driverloaded', 'n', '-f', `VG_XenStorage-${SR}`], { reject: false, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    }
    if (process.env['LVM_GOLDEN_WRITE'] === '1') {
      const yaml = [
        '# Golden command lines of machine data on the lvm driver (test/lvm/image-meta.test.ts), no device-mapper.',
        '# <DEV> the PV, <SR> the SR uuid, <REF> a random MGT reference, <N> losetup offsets, <LOOP> the loop device.',
        '# Reviewed by hand: a change here is a change in what the driver runs. Regenerate: LVM_GOLDEN_WRITE=1.',
        ...actual.flatMap((c) => [`- name: ${c.name}`, '  argv:', ...c.argv.map((a) => `    - ${JSON.stringify(a)}`)]),
        '',
      ].join('\n');
      writeFileSync(FIXTURE, yaml);
    }
    const golden = parse(readFileSync(FIXTURE, 'utf8')) as GoldenCase[];
    expect(actual).toEqual(golden);
    // The change is ONE lvchange that deletes the old tags and adds the new ones.
    const short = actual.find((c) => c.name === 'vdi_update image-meta-set short')!.argv.filter((a) => a[0] === 'lvchange');
    expect(short).toHaveLength(1);
    expect(short[0]).toContain('--deltag');
    expect(short[0]).toContain('--addtag');
  });
});
