// The `nfs` driver against the kernel NFS server and client of the test host
// (one boot for the whole file): NFSv3 and NFSv4.1 SRs through smctl. On this
// host it is one test that boots the guest and reports every guest case.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { describeInTestHost } from '../../src/testhost/vitest.js';
import { assertBuilt, createVdi, imageOf, MiB, ok, pattern, scratch, smConfig, smctl, vdiRecord, type Scratch } from '../file-sr/helpers.js';

const EXPORT = '/srv/smapi-nfs-export';

interface MountLine {
  fsType: string;
  source: string;
  options: string;
}
function mountAt(path: string): MountLine | undefined {
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[4] !== path) continue;
    const [fsType, source, superOpts] = (l.split(' - ')[1] ?? '').split(' ');
    return { fsType: fsType ?? '', source: source ?? '', options: `${f[5] ?? ''},${superOpts ?? ''}` };
  }
  return undefined;
}

// Under emulation on a loaded machine one smctl call takes seconds: generous limits.
const GUEST_CASE_MS = 900_000;

describeInTestHost('nfs SR in the test host', import.meta.url, () => {
  const scratches: Scratch[] = [];

  beforeAll(async () => {
    assertBuilt();
    await execa('bash', ['-c', `source /.testhost/lib.sh && th_nfs_server_start ${EXPORT}`]);
  });
  afterAll(async () => {
    for (const s of scratches) await s.cleanup();
  });

  // Every format over NFSv3; qcow2 over NFSv4.1 (each smctl call costs seconds under emulation).
  for (const [version, formats] of [['3', ['vhd', 'qcow2', 'raw']], ['4.1', ['qcow2']]] as const) {
    it(`NFSv${version}: create, attach, ${formats.join('/')} VDIs, snapshot, data across detach/reattach, probe, delete`, { timeout: GUEST_CASE_MS }, async () => {
      const s = scratch();
      scratches.push(s);
      const dc = ['device-config:server=127.0.0.1', `device-config:serverpath=${EXPORT}`, `device-config:nfsversion=${version}`];
      const sr = await ok(s, ['sr-create', 'type=nfs', 'name-label=nfs', 'shared=true', ...dc]);
      // The SR is <serverpath>/<sr_uuid> on the server, soft-mounted with sm's options.
      expect(existsSync(join(EXPORT, sr))).toBe(true);
      const srDir = join(s.mountRoot, sr);
      const m = mountAt(srDir)!;
      expect(m.fsType).toBe(version === '3' ? 'nfs' : 'nfs4');
      expect(m.source).toBe(`127.0.0.1:${EXPORT}/${sr}`);
      for (const o of ['soft', `vers=${version}`, 'timeo=200', 'retrans=4', 'acdirmin=0', 'acdirmax=0', 'proto=tcp']) expect(m.options.split(',')).toContain(o);

      const mounted = { ...s, location: srDir };
      const vdis: string[] = [];
      const data = new Map<string, Buffer>();
      for (const [i, format] of formats.entries()) {
        const v = await createVdi(s, sr, format, '8MiB');
        vdis.push(v);
        expect(smConfig(vdiRecord(s, v))['image-format']).toBe(format);
        // Written through the client, visible on the server's side of the export.
        expect(existsSync(join(EXPORT, sr, `${v}.${format}`))).toBe(true);
        const d = pattern(0x20 + i);
        await writeRange(imageOf(mounted, v), 2 * MiB, d);
        data.set(v, d);
      }
      const snap = await ok(s, ['vdi-snapshot', `uuid=${vdis[0]}`]);
      expect(vdiRecord(s, snap)!['is_a_snapshot']).toBe(true);
      const newer = pattern(0x99);
      await writeRange(imageOf(mounted, vdis[0]!), 2 * MiB, newer);

      const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
      await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
      expect(mountAt(srDir)).toBeUndefined();
      expect(existsSync(srDir)).toBe(false);
      await ok(s, ['pbd-plug', `uuid=${pbd}`]);
      expect(mountAt(srDir)?.source).toBe(`127.0.0.1:${EXPORT}/${sr}`);

      expect((await readRange(imageOf(mounted, vdis[0]!), 2 * MiB, newer.length)).equals(newer)).toBe(true);
      expect((await readRange(imageOf(mounted, snap), 2 * MiB, newer.length)).equals(data.get(vdis[0]!)!)).toBe(true);
      for (const v of vdis.slice(1)) expect((await readRange(imageOf(mounted, v), 2 * MiB, data.get(v)!.length)).equals(data.get(v)!)).toBe(true);

      const probe = await ok(s, ['sr-probe', 'type=nfs', ...dc]);
      expect(probe).toContain(`<UUID>${sr}</UUID>`);
      // Without serverpath: ConfigServerPathMissing, as sm (the export list goes to stderr).
      const noPath = await smctl(s, ['sr-probe', 'type=nfs', 'device-config:server=127.0.0.1']);
      expect(noPath.stderr).toContain('SR_BACKEND_FAILURE_101');
      expect(noPath.stderr).toContain(EXPORT);

      for (const v of [snap, ...vdis]) await ok(s, ['vdi-destroy', `uuid=${v}`]);
      await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
      await ok(s, ['sr-destroy', `uuid=${sr}`]);
      expect(existsSync(join(EXPORT, sr))).toBe(false);
      // No scratch mount of the export is left behind.
      expect(readdirSync(s.mountRoot).filter((n) => n.startsWith('.nfs-'))).toEqual([]);
    });
  }

  it('probeversion lists the versions the server serves; sm-config:nosubdir=true keeps the SR in the export itself', { timeout: GUEST_CASE_MS }, async () => {
    const s = scratch();
    scratches.push(s);
    const probe = await ok(s, ['sr-probe', 'type=nfs', 'device-config:server=127.0.0.1', `device-config:serverpath=${EXPORT}`, 'device-config:probeversion=true']);
    expect(probe).toMatch(/<SupportedVersions>\s*<Version>3<\/Version>\s*<Version>4<\/Version>\s*<\/SupportedVersions>/);

    const flat = join(EXPORT, 'flat');
    mkdirSync(flat, { recursive: true });
    const dc = ['device-config:server=127.0.0.1', `device-config:serverpath=${flat}`, 'device-config:probeversion=true'];
    const sr = await ok(s, ['sr-create', 'type=nfs', 'name-label=flat', 'shared=true', 'sm-config:nosubdir=true', ...dc]);
    const srDir = join(s.mountRoot, sr);
    // The export itself is mounted, with the first version the server serves.
    expect(mountAt(srDir)?.source).toBe(`127.0.0.1:${flat}`);
    expect(mountAt(srDir)?.options.split(',')).toContain('vers=3');
    expect(existsSync(join(flat, sr))).toBe(false);
    const v = await createVdi(s, sr, 'qcow2', '8MiB');
    expect(existsSync(join(flat, `${v}.qcow2`))).toBe(true);
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['sr-destroy', `uuid=${sr}`]);
    // The export stays: only the SR's files were the SR.
    expect(existsSync(flat)).toBe(true);
    expect(readdirSync(flat).filter((n) => n.endsWith('.qcow2'))).toEqual([]);
  });

  it('create refuses an SR subdirectory that already exists and is not empty (SRExists); an empty one is reused', { timeout: GUEST_CASE_MS }, async () => {
    const s = scratch();
    scratches.push(s);
    const taken = '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
    mkdirSync(join(EXPORT, taken), { recursive: true });
    writeFileSync(join(EXPORT, taken, 'something'), 'x');
    const uuidDir = readdirSync(EXPORT);
    expect(uuidDir).toContain(taken);
    // sr-create picks its own uuid: create the conflict through the driver directly.
    const { NFS_SR } = await import('../../drivers/nfs/handlers.js');
    process.env['SM_SR_MOUNT_ROOT'] = s.mountRoot;
    try {
      const call = { sr_uuid: taken, device_config: { server: '127.0.0.1', serverpath: EXPORT } };
      const err = await NFS_SR.create(call as never, {} as never).then(
        () => undefined,
        (e: unknown) => e as { key?: string },
      );
      expect(err?.key).toBe('SRExists');
      const empty = '2c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
      mkdirSync(join(EXPORT, empty));
      await NFS_SR.create({ ...call, sr_uuid: empty } as never, {} as never);
      expect(readdirSync(join(EXPORT, empty))).toEqual([]);
    } finally {
      delete process.env['SM_SR_MOUNT_ROOT'];
    }
  });
}, 1_800_000);
