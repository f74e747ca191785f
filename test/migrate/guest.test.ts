// Moves between every pair of SR types in the test host (user-mode-linux or
// QEMU guest with device-mapper and the kernel NFS server), one boot.
//
// Six SRs made through bin/smctl: file, ext (loop device), two nfs (two exports
// of the guest's own knfsd at 127.0.0.1) and two lvm (two loop devices, LVs
// activated through device-mapper). One VDI travels a closed walk of 14
// `vdi-pool-migrate` hops over the SR types: each of the 12 ordered pairs of
// distinct types once, plus nfs -> nfs and lvm -> lvm (between the two SRs of
// that type). The image format changes as planned in HOPS, which covers every
// one of the 9 (source format, destination format) pairs and has every SR type
// as a source and as a destination of every format (checked below).
//
// Before each hop a new piece is written through the VDI's attached path (the
// image file on file/ext/nfs, /dev/<vg>/<lv> after vdi-attach on lvm); after it
// the whole disk is read back from the destination and compared with a model of
// everything written so far, and the source is checked gone (record, image file
// or LV).
//
// smctl calls: 6 sr-create + 1 vdi-create + 14 vdi-pool-migrate + 4 vdi-attach
// + 4 vdi-detach (lvm destinations) = 29; about 170 driver calls in all (a
// migrate is vdi_create, attach+activate of both ends, deactivate+detach of
// both, vdi_delete).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { contentSha256, writeRange } from '../../src/sdk/formats/index.js';
import { deviceMapperAvailable, lvs } from '../../src/sdk/tools/lvm.js';
import { describeInTestHost } from '../../src/testhost/vitest.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { assertBuilt, MiB, SMCTL, scratch, withDb, type Scratch } from '../file-sr/helpers.js';

type SrType = 'file' | 'ext' | 'nfs' | 'lvm';
const TYPES: SrType[] = ['file', 'ext', 'nfs', 'lvm'];
const FORMATS: ImageFormat[] = ['vhd', 'qcow2', 'raw'];

/** The walk: [SR type, format of the VDI there]; hop i goes from WALK[i] to WALK[i+1]. */
const WALK: [SrType, ImageFormat][] = [
  ['file', 'raw'],
  ['lvm', 'raw'],
  ['nfs', 'vhd'],
  ['nfs', 'qcow2'],
  ['ext', 'raw'],
  ['nfs', 'qcow2'],
  ['file', 'vhd'],
  ['nfs', 'raw'],
  ['lvm', 'qcow2'],
  ['lvm', 'vhd'],
  ['ext', 'vhd'],
  ['file', 'qcow2'],
  ['ext', 'qcow2'],
  ['lvm', 'raw'],
  ['file', 'raw'],
];
const HOPS = WALK.slice(1).map((to, i) => ({ from: WALK[i]!, to }));

const EXPORTS = ['/srv/smapi-migrate-a', '/srv/smapi-migrate-b'];
const SIZE = 24 * MiB;
const GUEST_CASE_MS = 1_200_000;
const LV_PREFIX: Record<ImageFormat, string> = { vhd: 'VHD', qcow2: 'QCOW2', raw: 'LV' };

/** The piece written before hop `i`: a different offset and byte each time, some across a 2 MiB block boundary. */
function pieceFor(i: number): [number, Buffer] {
  const off = (i * 1536 + 300) * 1024 + (i % 3) * 777;
  return [off, Buffer.alloc(40_000 + i * 1000, 0x40 + i)];
}

describe('the hop plan', () => {
  it('has each ordered pair of distinct SR types once, nfs -> nfs and lvm -> lvm, all 9 format pairs, every type a source and a destination of every format', () => {
    const typePairs = HOPS.map((h) => `${h.from[0]}>${h.to[0]}`).sort();
    const want = [...TYPES.flatMap((a) => TYPES.filter((b) => b !== a).map((b) => `${a}>${b}`)), 'nfs>nfs', 'lvm>lvm'].sort();
    expect(typePairs).toEqual(want);
    expect(new Set(HOPS.map((h) => `${h.from[1]}>${h.to[1]}`)).size).toBe(9);
    expect(new Set(HOPS.map((h) => `${h.from[0]}:${h.from[1]}`)).size).toBe(TYPES.length * FORMATS.length);
    expect(new Set(HOPS.map((h) => `${h.to[0]}:${h.to[1]}`)).size).toBe(TYPES.length * FORMATS.length);
    // Pieces never overlap each other or the end of the disk.
    const spans = HOPS.map((_, i) => pieceFor(i)).map(([o, b]) => [o, o + b.length] as const);
    for (const [a, [s, e]] of spans.entries()) {
      expect(e).toBeLessThanOrEqual(SIZE - 4096);
      for (const [s2, e2] of spans.slice(a + 1)) expect(e <= s2 || e2 <= s).toBe(true);
    }
  });
});

/** smctl with a long per-call limit: under emulation on a loaded machine one call can take minutes. */
async function ok(s: Scratch, args: string[]): Promise<string> {
  const env: Record<string, string | undefined> = { ...process.env, ...s.env };
  delete env['SM_DIR'];
  const r = await execa(process.execPath, [SMCTL, ...args], { env, extendEnv: false, reject: false, timeout: 900_000 });
  if (r.exitCode !== 0) throw new Error(`smctl ${args.join(' ')} failed (${String(r.exitCode)}):\n${String(r.stderr)}${String(r.stdout)}`);
  return String(r.stdout).trim();
}

describeInTestHost('moves between every pair of SR types (file, ext, nfs, lvm) in the test host', import.meta.url, () => {
  let s: Scratch;
  const loops: Loop[] = [];
  /** SR uuids by type; nfs and lvm have two, the second used for the type -> same type hop. */
  const srs = {} as Record<SrType, string[]>;
  /** Everything written so far, the model the destination is compared with. */
  const disk = Buffer.alloc(SIZE);
  let vdi = '';
  let where = '';
  let broken: string | undefined;

  const srTypeOf = (sr: string): SrType => TYPES.find((t) => srs[t].includes(sr))!;
  const lvNames = async (sr: string): Promise<string[]> =>
    (await lvs({ vg: `VG_XenStorage-${sr}` }, { devices: loops.map((l) => l.device) })).map((l) => l.lvName).sort();
  const filesOf = (sr: string, uuid: string): string[] => readdirSync(join(s.mountRoot, sr)).filter((n) => n.includes(uuid));
  const modelSha = (): string => createHash('sha256').update(disk).digest('hex');

  /** Runs `fn` with the VDI's data path: the image file on a file-based SR; attached (and detached after) on lvm. */
  async function withPath<T>(sr: string, uuid: string, format: ImageFormat, fn: (path: string) => Promise<T>): Promise<T> {
    if (srTypeOf(sr) !== 'lvm') return fn(join(s.mountRoot, sr, `${uuid}.${format}`));
    const out = await ok(s, ['vdi-attach', `uuid=${uuid}`]);
    const path = /params \( RO\)\s*: (\S+)/.exec(out)?.[1];
    if (!path) throw new Error(`vdi-attach ${uuid}: no params in ${out}`);
    expect(path).toBe(`/dev/VG_XenStorage-${sr}/${LV_PREFIX[format]}-${uuid}`);
    try {
      return await fn(path);
    } finally {
      await ok(s, ['vdi-detach', `uuid=${uuid}`]);
    }
  }

  beforeAll(async () => {
    assertBuilt();
    await execa('bash', ['-c', `source /.testhost/lib.sh && th_nfs_server_start ${EXPORTS.join(' ')}`]);
    s = scratch();
    // LVM -> LVM copies that stage (vhd <-> qcow2 between two block devices) stage here, checked empty after.
    s.env['SM_COPY_STAGING_DIR'] = join(s.dir, 'staging');
    mkdirSync(s.env['SM_COPY_STAGING_DIR']);
  }, GUEST_CASE_MS);
  afterAll(async () => {
    await s?.cleanup();
    for (const l of loops) await l.cleanup();
  });

  it('six SRs through smctl: file, ext, nfs x2 (kernel NFS server), lvm x2 (device-mapper)', { timeout: GUEST_CASE_MS }, async () => {
    expect(deviceMapperAvailable()).toBe(true);
    for (let i = 0; i < 3; i++) loops.push(await loopDevice(256));
    srs.file = [await ok(s, ['sr-create', 'type=file', 'name-label=file', `device-config:location=${s.location}`])];
    srs.ext = [await ok(s, ['sr-create', 'type=ext', 'name-label=ext', `device-config:device=${loops[0]!.device}`])];
    srs.nfs = [];
    for (const [i, e] of EXPORTS.entries())
      srs.nfs.push(await ok(s, ['sr-create', 'type=nfs', `name-label=nfs${i}`, 'device-config:server=127.0.0.1', `device-config:serverpath=${e}`]));
    srs.lvm = [];
    for (const i of [1, 2]) srs.lvm.push(await ok(s, ['sr-create', 'type=lvm', `name-label=lvm${i}`, `device-config:device=${loops[i]!.device}`]));
    for (const sr of srs.lvm) expect(await lvNames(sr)).toEqual(['MGT']);

    const [type, format] = WALK[0]!;
    where = srs[type][0]!;
    vdi = await ok(s, ['vdi-create', `sr-uuid=${where}`, 'name-label=traveller', `virtual-size=${SIZE}`, `sm-config:image-format=${format}`]);
    // The last 4 KiB hold data from the start: every copy must reach the end of the disk.
    const tail: [number, Buffer] = [SIZE - 4096, Buffer.alloc(4096, 0x33)];
    await writeRange({ path: join(s.mountRoot, where, `${vdi}.${format}`), format }, tail[0], tail[1]);
    tail[1].copy(disk, tail[0]);
  });

  for (const [i, { from, to }] of HOPS.entries()) {
    it(`hop ${i + 1}: ${from[0]} (${from[1]}) -> ${to[0]} (${to[1]}): content kept, the source gone`, { timeout: GUEST_CASE_MS }, async () => {
      if (!vdi) throw new Error('no VDI: the SR set-up failed');
      if (broken) throw new Error(`not run: ${broken} failed and the VDI did not arrive`);
      broken = `hop ${i + 1}`;
      // The destination: the other SR of the same type for nfs -> nfs and lvm -> lvm.
      const dest = from[0] === to[0] ? srs[to[0]].find((sr) => sr !== where)! : srs[to[0]][0]!;
      expect(srTypeOf(where)).toBe(from[0]);

      // A new piece through the attached path of the source, in its format.
      const [off, data] = pieceFor(i);
      data.copy(disk, off);
      await withPath(where, vdi, from[1], async (path) => {
        await writeRange({ path, format: from[1] }, off, data);
        expect(await contentSha256({ path, format: from[1] }, SIZE), 'the source before the move').toBe(modelSha());
      });
      const lvsBefore = srTypeOf(dest) === 'lvm' ? await lvNames(dest) : [];

      const moved = await ok(s, ['vdi-pool-migrate', `uuid=${vdi}`, `sr-uuid=${dest}`, `dest-img-format=${to[1]}`]);
      expect(moved).toMatch(/^[0-9a-f-]{36}$/);

      // Read back from the destination: the whole disk as the model says.
      const got = await withPath(dest, moved, to[1], (path) => contentSha256({ path, format: to[1] }, SIZE));
      expect(got, `content after ${from[0]} (${from[1]}) -> ${to[0]} (${to[1]})`).toBe(modelSha());
      withDb(s, (db) => {
        expect(db.getByUuid('VDI', vdi), 'the source record').toBeUndefined();
        const rec = db.getByUuid('VDI', moved)!;
        expect(String(db.get('SR', String(rec['SR']))!['uuid'])).toBe(dest);
        expect(rec['name_label']).toBe('traveller');
        expect((rec['sm_config'] as Record<string, string>)['image-format']).toBe(to[1]);
      });
      // The source's image is gone from its SR; the destination holds exactly the new image.
      if (srTypeOf(where) === 'lvm') expect((await lvNames(where)).filter((n) => n.endsWith(vdi)), 'source LV').toEqual([]);
      else expect(filesOf(where, vdi), 'source image file').toEqual([]);
      if (srTypeOf(dest) === 'lvm') expect(await lvNames(dest)).toEqual([...lvsBefore, `${LV_PREFIX[to[1]]}-${moved}`].sort());
      else expect(filesOf(dest, moved)).toEqual([`${moved}.${to[1]}`]);
      expect(readdirSync(s.env['SM_COPY_STAGING_DIR']!), 'staging files left').toEqual([]);
      for (const sr of [where, dest])
        if (srTypeOf(sr) !== 'lvm') expect(readdirSync(join(s.mountRoot, sr)).filter((n) => n.includes('staging')), 'staging files left').toEqual([]);
      vdi = moved;
      where = dest;
      broken = undefined;
    });
  }

  it('at the end: the traveller alone, back on the file SR; nothing else anywhere, no LV left active', { timeout: GUEST_CASE_MS }, async () => {
    if (broken || !vdi) throw new Error(`not run: ${broken ?? 'the set-up'} failed`);
    expect(where).toBe(srs.file[0]);
    withDb(s, (db) => {
      const all = [...srs.file, ...srs.ext, ...srs.nfs, ...srs.lvm];
      const counts = Object.fromEntries(all.map((sr) => [sr, db.where('VDI', 'SR', db.getByUuid('SR', sr)!.ref).length]));
      expect(counts).toEqual(Object.fromEntries(all.map((sr) => [sr, sr === where ? 1 : 0])));
    });
    for (const sr of srs.lvm) {
      expect(await lvNames(sr)).toEqual(['MGT']);
      const rows = await lvs({ vg: `VG_XenStorage-${sr}` }, { devices: loops.map((l) => l.device) });
      expect(rows.filter((l) => l.attr.active === true && l.lvName !== 'MGT').map((l) => l.lvName)).toEqual([]);
    }
  });
}, 3_000_000);
