// The `file` driver end to end on this host: the real FileSR executable run by
// smctl (a toolstack with a XenAPI endpoint and a DB), real vhd-util and
// qemu-img, real files; data checked by reading the disks back.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertBuilt, createSr, createVdi, filesIn, imageOf, MiB, ok, pattern, readVdi, scratch, smConfig, smctl, srRecord,
  vdiRecord, vdisOfSr, writeVdi, type Scratch,
} from './helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

describe.each(['vhd', 'qcow2', 'raw'] as const)('file SR with a %s VDI', (format) => {
  it('creates, snapshots, clones, deletes and coalesces with the data intact and the DB right', async () => {
    s = scratch();
    const sr = await createSr(s);
    expect(existsSync(join(s.mountRoot, sr))).toBe(true);
    const v = await createVdi(s, sr, format, '7MiB', 'disk');
    const created = vdiRecord(s, v)!;
    // Rounded per format: VHD 2 MiB granularity, qcow2 64 KiB, raw 512 B.
    expect(Number(created['virtual_size'])).toBe(format === 'vhd' ? 8 * MiB : 7 * MiB);
    expect(smConfig(created)['image-format']).toBe(format);
    expect(smConfig(created)['vhd-parent']).toBeUndefined();
    expect(created['managed']).toBe(true);
    expect(created['read_only']).toBe(false);
    expect(imageOf(s, v).format).toBe(format);

    const a = pattern(0x11);
    const a2 = pattern(0x22);
    await writeVdi(s, v, 0, a);
    await writeVdi(s, v, 4 * MiB, a2);

    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const snapRec = vdiRecord(s, snap)!;
    const vRec = vdiRecord(s, v)!;
    const base = smConfig(vRec)['vhd-parent']!;
    expect(base).toMatch(/^[0-9a-f-]{36}$/);
    expect(smConfig(snapRec)['vhd-parent']).toBe(base);
    expect(snapRec['is_a_snapshot']).toBe(true);
    expect(snapRec['snapshot_of']).toBe(vRec.ref);
    expect(snapRec['read_only']).toBe(false);
    expect(snapRec['managed']).toBe(true);
    const baseRec = vdiRecord(s, base)!;
    expect(baseRec['managed']).toBe(false);
    expect(baseRec['read_only']).toBe(true);
    expect(smConfig(baseRec)['image-format']).toBe(format);
    // A raw VDI snapshots into the default copy-on-write format (vhd for this driver).
    const leafFormat = format === 'raw' ? 'vhd' : format;
    expect(smConfig(vRec)['image-format']).toBe(leafFormat);
    expect(smConfig(snapRec)['image-format']).toBe(leafFormat);
    expect(Number(srRecord(s, sr)['virtual_allocation'])).toBe(2 * Number(created['virtual_size']));

    // Write new data into the source; the snapshot keeps the old.
    const b = pattern(0x33);
    await writeVdi(s, v, 0, b);
    expect((await readVdi(s, v, 0, b.length)).equals(b)).toBe(true);
    expect((await readVdi(s, v, 4 * MiB, a2.length)).equals(a2)).toBe(true);
    expect((await readVdi(s, snap, 0, a.length)).equals(a)).toBe(true);
    expect((await readVdi(s, snap, 4 * MiB, a2.length)).equals(a2)).toBe(true);

    // A clone of the source is independent of it.
    const clone = await ok(s, ['vdi-clone', `uuid=${v}`]);
    const c = pattern(0x44);
    await writeVdi(s, clone, 0, c);
    expect((await readVdi(s, clone, 0, c.length)).equals(c)).toBe(true);
    expect((await readVdi(s, v, 0, b.length)).equals(b)).toBe(true);
    expect(vdiRecord(s, clone)!['is_a_snapshot']).toBe(false);

    // Delete the clone and the snapshot: GC removes the bases and coalesces the
    // chain; the source reads back the same.
    await ok(s, ['vdi-destroy', `uuid=${clone}`]);
    await ok(s, ['vdi-destroy', `uuid=${snap}`]);
    expect(vdiRecord(s, snap)).toBeUndefined();
    expect(filesIn(s)).toEqual([`${v}.${format}`]);
    expect((await readVdi(s, v, 0, b.length)).equals(b)).toBe(true);
    expect((await readVdi(s, v, 4 * MiB, a2.length)).equals(a2)).toBe(true);
    const after = vdisOfSr(s, sr);
    expect(after.map((r) => r['uuid'])).toEqual([v]);
    expect(smConfig(after[0])['vhd-parent']).toBeUndefined();
    expect(smConfig(after[0])['image-format']).toBe(format);
    expect(after[0]!['read_only']).toBe(false);
    expect(Number(srRecord(s, sr)['virtual_allocation'])).toBe(Number(created['virtual_size']));

    // A scan now changes nothing.
    const before = vdisOfSr(s, sr);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr)).toEqual(before);
  });

  it('resizes up, refuses to shrink, and deletes idempotently', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createVdi(s, sr, format, '4MiB');
    const a = pattern(0x55);
    await writeVdi(s, v, 0, a);
    await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=12MiB']);
    expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(12 * MiB);
    expect((await readVdi(s, v, 0, a.length)).equals(a)).toBe(true);
    await writeVdi(s, v, 11 * MiB, a);
    expect((await readVdi(s, v, 11 * MiB, a.length)).equals(a)).toBe(true);
    const shrink = await smctl(s, ['vdi-resize', `uuid=${v}`, 'disk-size=2MiB']);
    expect(shrink.exitCode).not.toBe(0);
    expect(shrink.stderr).toMatch(/VDISize|shrinking is not allowed/);
    expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(12 * MiB);

    // The file vanishing behind the toolstack's back: delete still succeeds.
    const { rmSync } = await import('node:fs');
    rmSync(imageOf(s, v).path);
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    expect(vdiRecord(s, v)).toBeUndefined();
  });
});

describe('file SR lifecycle', () => {
  it('attaches by bind mount, reports attach details, detaches, refuses to delete while VDIs remain', async () => {
    s = scratch();
    const sr = await createSr(s);
    const mnt = join(s.mountRoot, sr);
    const { readFileSync } = await import('node:fs');
    const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
    expect(mounted()).toBe(true);
    const v = await createVdi(s, sr, 'qcow2', '4MiB');
    const att = await ok(s, ['vdi-attach', `uuid=${v}`]);
    expect(att).toContain(`params ( RO)`);
    expect(att).toContain(`${mnt}/${v}.qcow2`);
    expect(att).toContain('storage-type: ext');
    expect(att).toContain(`vdi-uuid: ${v}`);
    expect(att).toContain('sm-datapath-format: qcow2');
    await ok(s, ['vdi-detach', `uuid=${v}`]);

    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`])).match(/uuid \( RO\)\s*: (\S+)/)![1]!;
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    expect(mounted()).toBe(false);
    expect(existsSync(mnt)).toBe(false);
    const del = await smctl(s, ['sr-destroy', `uuid=${sr}`]);
    expect(del.exitCode).not.toBe(0);
    expect(del.stderr).toMatch(/SR_BACKEND_FAILURE_39|SRNotEmpty|not empty/);
    expect(del.stderr).toContain(v);
    expect(mounted()).toBe(false);
    expect(filesIn(s)).toEqual([`${v}.qcow2`]);

    await ok(s, ['pbd-plug', `uuid=${pbd}`]);
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['sr-destroy', `uuid=${sr}`]);
    expect(mounted()).toBe(false);
    expect(filesIn(s)).toEqual([]);
  });

  it('chooses the format from preferred-image-formats and refuses an unsupported one before creating anything', async () => {
    s = scratch();
    const sr = await createSr(s, ['device-config:preferred-image-formats=qcow2,vhd']);
    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=1MiB', 'name-label=p']);
    expect(smConfig(vdiRecord(s, v))['image-format']).toBe('qcow2');
    const legacy = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=1MiB', 'name-label=l', 'sm-config:type=raw']);
    expect(imageOf(s, legacy).format).toBe('raw');
    const before = filesIn(s);
    const bad = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=1MiB', 'name-label=x', 'sm-config:image-format=vmdk']);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain("'vmdk'");
    expect(bad.stderr).toContain("SR type 'file'");
    expect(bad.stderr).toMatch(/supported formats: vhd, qcow2, raw/);
    expect(filesIn(s)).toEqual(before);
    expect(vdisOfSr(s, sr)).toHaveLength(2);
  });

  it('snapshot of a raw VDI goes into the first preferred copy-on-write format', async () => {
    s = scratch();
    const sr = await createSr(s, ['device-config:preferred-image-formats=raw,qcow2']);
    const v = await createVdi(s, sr, 'raw', '3MiB');
    const a = pattern(0x66);
    await writeVdi(s, v, MiB, a);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    expect(imageOf(s, v).format).toBe('qcow2');
    expect(imageOf(s, snap).format).toBe('qcow2');
    const base = smConfig(vdiRecord(s, v))['vhd-parent']!;
    expect(imageOf(s, base).format).toBe('raw');
    expect((await readVdi(s, snap, MiB, a.length)).equals(a)).toBe(true);
    expect((await readVdi(s, v, MiB, a.length)).equals(a)).toBe(true);
  });
});
