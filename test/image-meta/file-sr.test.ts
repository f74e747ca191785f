// Machine data through the file-SR driver, with the real FileSR executable,
// smctl and the real tools: set at vdi_create (sm-config:image-meta), kept
// by snapshot and clone (a snapshot keeps the value its source had), carried
// by GC coalesce and leaf-coalesce so what each VDI reads never changes,
// reported by vdi_update, refused when invalid (nothing left behind), and
// re-applied after a format conversion; and sr_scan's report of it in the
// records (sm_config image-meta / image-meta-from): a VDI the toolstack forgot
// comes back with its value, an inheriting snapshot shows its base, a stale
// report is corrected, and a toolstack's own bare image-meta is kept.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/sdk/formats/index.js';
import { changeKeys, clearOwn, readEffective, reapplyAfterCopy, sidecarPath } from '../../src/sdk/image-meta/index.js';
import {
  assertBuilt, createSr, filesIn, imageOf, ok, scratch, smConfig, smctl, vdiRecord, vdisOfSr, withDb, type Scratch,
} from '../file-sr/helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

const M1 = '{"qemu.machine-types":["q35","pc"],"qemu.min-ram-MB":1024}';
const M1_OBJ = JSON.parse(M1);

async function effective(s: Scratch, uuid: string): Promise<string | null> {
  return (await readEffective(imageOf(s, uuid))).text;
}

async function createWithMeta(s: Scratch, sr: string, format: string, meta: string): Promise<string> {
  return ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=os-disk', `sm-config:image-format=${format}`, `sm-config:image-meta=${meta}`]);
}

const parentOf = (u: string) => smConfig(vdiRecord(s!, u))['vhd-parent']!;
const keys = (u: string) => {
  const sm = smConfig(vdiRecord(s!, u));
  return { text: sm['image-meta'] ?? null, from: sm['image-meta-from'] ?? null };
};

describe.each(['vhd', 'qcow2', 'raw'] as const)('file SR, %s VDIs', (format) => {
  it('vdi_create stores sm-config:image-meta; vdi_update reports it', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, format, M1);
    expect(await effective(s, v)).toBe(M1);
    await ok(s, ['vdi-update', `uuid=${v}`]);
    expect(smConfig(vdiRecord(s, v))['image-meta']).toBe(M1);
    expect(smConfig(vdiRecord(s, v))['image-meta-from']).toBe(v);
    // Only the image (and for vhd/raw its sidecar) is in the SR.
    const expected = format === 'qcow2' ? [`${v}.qcow2`] : [`${v}.${format}`, `${v}.${format}.image-meta.json`];
    expect(filesIn(s)).toEqual(expected.sort());
    // sr-scan does not take the sidecar for a VDI.
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr).map((r) => r['uuid'])).toEqual([v]);
  });

  it('vdi_update applies a request in sm-config:image-meta-set (or refuses it, changing nothing) and removes it', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, format, M1);
    const request = (value: string) => withDb(s!, (db) => {
      const r = db.getByUuid('VDI', v)!;
      db.set('VDI', r.ref, 'sm_config', { ...smConfig(r), 'image-meta-set': value });
    });
    request('{"qemu.min-ram-MB":1,"qemu.min-ram-MB":2}');
    const bad = await smctl(s, ['vdi-update', `uuid=${v}`]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr + bad.stdout).toMatch(/image-meta-set is refused.*duplicate key "qemu\.min-ram-MB"/);
    // smctl rolls back a failed call's database writes, so the request is still there to fix.
    expect(await effective(s, v)).toBe(M1);
    request('{"com.example.role":"db"}');
    await ok(s, ['vdi-update', `uuid=${v}`]);
    expect(await effective(s, v)).toBe('{"com.example.role":"db"}');
    expect(smConfig(vdiRecord(s, v))['image-meta']).toBe('{"com.example.role":"db"}');
    expect(smConfig(vdiRecord(s, v))['image-meta-set']).toBeUndefined();
    request('inherit');
    await ok(s, ['vdi-update', `uuid=${v}`]);
    expect(await effective(s, v)).toBeNull();
    expect(smConfig(vdiRecord(s, v))['image-meta']).toBeUndefined();
    expect(smConfig(vdiRecord(s, v))['image-meta-from']).toBeUndefined();
  });

  it('refuses an invalid image-meta at vdi_create, naming the key; nothing is created', async () => {
    s = scratch();
    const sr = await createSr(s);
    for (const [bad, words] of [
      ['{"qemu.min-ram-MB":1,"qemu.min-ram-MB":2}', /duplicate key "qemu\.min-ram-MB"/],
      ['{"qemu.colour":"red"}', /"qemu\.colour".*not in the key registry/],
      ['{"":1}', /empty key/],
      ['[1,2]', /must be a JSON object/],
      ['{"qemu.min-ram-MB":"lots"}', /"qemu\.min-ram-MB".*integer/],
      ['{"machine":"q35"}', /"machine".*reverse-dotted vendor prefix/],
    ] as const) {
      const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=x', `sm-config:image-format=${format}`, `sm-config:image-meta=${bad}`]);
      expect(r.exitCode, bad).not.toBe(0);
      expect(r.stderr + r.stdout, bad).toMatch(words);
    }
    expect(filesIn(s)).toEqual([]);
    expect(vdisOfSr(s, sr)).toEqual([]);
  });

  it('snapshot and clone keep the source value; later edits of the leaf do not reach them; leaf-coalesce carries it', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, format, M1);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const base = parentOf(v);
    expect(await effective(s, v)).toBe(M1);
    expect(await effective(s, snap)).toBe(M1);
    expect(await effective(s, base)).toBe(M1);
    // The leaf now inherits from the base (its own value went to the base with the data).
    expect((await readEffective(imageOf(s, v))).from?.path).toBe(imageOf(s, base).path);
    // A clone of the snapshot (which itself inherits) reads the same.
    const clone = await ok(s, ['vdi-clone', `uuid=${snap}`]);
    expect(await effective(s, clone)).toBe(M1);
    // Changing the leaf gives it its own value; the snapshot and the clone keep M1.
    const m2 = await changeKeys(imageOf(s, v), { 'qemu.min-ram-MB': 4096 });
    expect(await effective(s, v)).toBe(m2);
    expect(await effective(s, snap)).toBe(M1);
    expect(await effective(s, clone)).toBe(M1);
    // Destroying the snapshot and the clone leaves v as the only child of its base: GC
    // leaf-coalesces v into the base; v still reads its own value.
    await ok(s, ['vdi-destroy', `uuid=${clone}`]);
    await ok(s, ['vdi-destroy', `uuid=${snap}`]);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr).map((r) => r['uuid']).sort()).toEqual([v].sort());
    expect(await effective(s, v)).toBe(m2);
    // No sidecar outlives its image.
    for (const f of filesIn(s).filter((n) => n.endsWith('.image-meta.json'))) {
      expect(existsSync(join(s.location, f.replace(/\.image-meta\.json$/, ''))), f).toBe(true);
    }
    await ok(s, ['vdi-update', `uuid=${v}`]);
    expect(JSON.parse(smConfig(vdiRecord(s, v))['image-meta']!)).toEqual({ ...M1_OBJ, 'qemu.min-ram-MB': 4096 });
  });
});

describe.each(['vhd', 'qcow2'] as const)('file SR coalesce, %s chain', (format) => {
  it('a hidden node merged into its parent hands its value to the parent: every VDI reads the same', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, format, M1);
    const s1 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b1 = parentOf(v);
    const m2 = await changeKeys(imageOf(s, v), { 'com.example.build': 2 });
    const s2 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b2 = parentOf(v);
    const s3 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b3 = parentOf(v);
    // v → B3 (inherits) → B2 (m2) → B1 (M1)
    expect(await effective(s, v)).toBe(m2);
    expect(await effective(s, s3)).toBe(m2);
    expect(await effective(s, s1)).toBe(M1);
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]); // B2 is merged into B1 now
    expect(filesIn(s).some((f) => f.startsWith(b2))).toBe(false);
    expect(parentOf(b3)).toBe(b1);
    expect(await effective(s, v)).toBe(m2);
    expect(await effective(s, s3)).toBe(m2);
    expect((await readEffective(imageOf(s, v))).from?.path).toBe(imageOf(s, b1).path);
  });
});

describe('conversion on a file SR', () => {
  it.each([
    ['qcow2', 'vhd'], ['qcow2', 'raw'], ['vhd', 'qcow2'], ['vhd', 'raw'], ['raw', 'qcow2'], ['raw', 'vhd'],
  ] as const)('%s → %s drops the value; re-applying gives the copy the source\'s effective value', async (from, to) => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, from, M1);
    await ok(s, ['vdi-snapshot', `uuid=${v}`]); // v now inherits from its base
    const out = mkdtempSync(join(s.dir, 'conv-'));
    try {
      const dst = { path: join(out, `copy.${to}`), format: to };
      await convert(imageOf(s, v), dst);
      expect((await readEffective(dst)).text).toBeNull();
      expect(await reapplyAfterCopy(imageOf(s, v), dst)).toBe(M1);
      expect((await readEffective(dst)).text).toBe(M1);
      expect((await readEffective(dst)).depth).toBe(0);
      if (to !== 'qcow2') expect(existsSync(sidecarPath(dst.path))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    expect(readdirSync(s.location).length).toBeGreaterThan(0);
  });
});

describe('sr_scan reports image-meta (file SR)', () => {
  it('re-introduced VDIs carry it; snapshots show their base; stale reports are fixed; a toolstack-only key stays', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createWithMeta(s, sr, 'qcow2', M1);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const base = parentOf(v);
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

describe('sr_scan reads machine data without a second pass over the images', () => {
  it('VHD and raw values come from the sidecars the directory lists, qcow2 values from the headers the scan read; an undecodable qcow2 extension is logged, its VDI left as it was', async () => {
    s = scratch();
    const sr = await createSr(s);
    const made = {
      vhd: await createWithMeta(s, sr, 'vhd', M1),
      raw: await createWithMeta(s, sr, 'raw', '{"qemu.min-ram-MB":512}'),
      qcow2: await createWithMeta(s, sr, 'qcow2', '{"qemu.min-ram-MB":2048}'),
      plain: await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=plain', 'sm-config:image-format=qcow2']),
      broken: await createWithMeta(s, sr, 'qcow2', '{"qemu.min-ram-MB":4096}'),
    };
    // The toolstack forgets them all: the scan brings them back with what the images hold.
    for (const u of Object.values(made)) await ok(s, ['vdi-forget', `uuid=${u}`]);
    // Break the broken one's extension payload magic ('VMMD' -> 'XMMD').
    const path = imageOf(s, made.broken).path;
    const head = readFileSync(path).subarray(0, 65536);
    const at = head.indexOf('VMMD');
    expect(at).toBeGreaterThan(0);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, at);
    closeSync(fd);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(keys(made.vhd)).toEqual({ text: M1, from: made.vhd });
    expect(keys(made.raw)).toEqual({ text: '{"qemu.min-ram-MB":512}', from: made.raw });
    expect(keys(made.qcow2)).toEqual({ text: '{"qemu.min-ram-MB":2048}', from: made.qcow2 });
    expect(keys(made.plain)).toEqual({ text: null, from: null });
    expect(vdisOfSr(s, sr).length).toBe(5);
    expect(keys(made.broken)).toEqual({ text: null, from: null });
    expect(readFileSync(s.env['SM_LOG_FILE']!, 'utf8')).toMatch(new RegExp(`machine data of VDI ${made.broken} not read: .*bad payload magic`));
  });
});
