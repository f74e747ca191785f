// The `ext` driver against a real kernel (device-mapper, ext4 on an LV): runs
// inside the test host (one boot for the whole file). On this host it is one test
// that boots the guest and reports every guest case.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXT_SR, lvDeviceOf, vgNameOf } from '../../drivers/ext/handlers.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import type { RequestMap } from '../../src/sdk/protocol/requests.js';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { pvsArgv, vgsArgv } from '../../src/sdk/tools/lvm.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { describeInTestHost } from '../../src/testhost/vitest.js';
import { assertBuilt, createVdi, imageOf, MiB, ok, pattern, scratch, smConfig, srRecord, vdiRecord, type Scratch } from '../file-sr/helpers.js';
import { inMountedSr, loopDevice, type Loop } from './helpers.js';

const ctx = {} as HandlerContext;
const sr1 = '5a0c5b4e-6c3e-4a8e-9d55-1d2f0e6b7a01';
const sr2 = '5a0c5b4e-6c3e-4a8e-9d55-1d2f0e6b7a02';

function mountsAt(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === path)
    .map((l) => l.split(' - ')[1]?.split(' ')[0] ?? '');
}

async function lvActive(vg: string, lv: string, dev: string): Promise<boolean> {
  const { stdout } = await execa('lvs', ['--devices', dev, '--noheadings', '-o', 'lv_attr', `${vg}/${lv}`]);
  return stdout.trim()[4] === 'a';
}

// Under emulation on a loaded machine one smctl call takes seconds: generous limits.
const GUEST_CASE_MS = 900_000;

describeInTestHost('ext SR in the test host', import.meta.url, () => {
  const loops: Loop[] = [];
  const scratches: Scratch[] = [];
  let mountRoot = '';

  beforeAll(() => {
    assertBuilt();
    mountRoot = `/run/ext-test-mnt-${process.pid}`;
    mkdirSync(mountRoot, { recursive: true });
    process.env['SM_SR_MOUNT_ROOT'] = mountRoot;
  });
  afterAll(async () => {
    for (const s of scratches) await s.cleanup();
    for (const m of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')) {
      if (m.startsWith(`${mountRoot}/`)) await execa('umount', [m], { reject: false });
    }
    for (const l of loops) await l.cleanup();
    rmSync(mountRoot, { recursive: true, force: true });
  });

  it('create, attach, detach and delete run exactly the commands EXTSR runs (golden argv) and leave its layout', { timeout: GUEST_CASE_MS }, async () => {
    const loop = await loopDevice(96);
    loops.push(loop);
    const D = loop.device;
    const vg = vgNameOf(sr1);
    const lvPath = `/dev/${vg}/${sr1}`;
    const srDir = join(mountRoot, sr1);
    const call = { sr_uuid: sr1, device_config: { device: D } };
    const scope = { devices: [D] };

    const rec = recordToolCalls();
    try {
      await EXT_SR.create(call as unknown as RequestMap['sr_create'], ctx);
      const created = rec.argvs();
      const lvcreate = created.find((a) => a[0] === 'lvcreate')!;
      expect(created).toEqual([
        pvsArgv({ devices: [D] }, scope),
        ['pvcreate', '--devices', D, '-ff', '-y', '--metadatasize', '10M', D],
        ['vgcreate', '--devices', D, '--metadatasize', '10M', vg, D],
        vgsArgv({ vg }, scope),
        pvsArgv({ devices: [D] }, scope),
        ['lvcreate', '--devices', D, '-n', sr1, '-L', lvcreate[6], vg, '-W', 'y', '--yes'],
        ['lvchange', '--devices', D, '-ay', `${vg}/${sr1}`],
        ['mkfs.ext4', '-F', lvPath],
        ['lvchange', '--devices', D, '-an', `${vg}/${sr1}`],
      ]);
      expect(lvcreate[6]).toMatch(/^\d+b$/);
    } finally {
      rec.stop();
    }
    // EXTSR's layout: the VG has no free space left (one LV over all of it), ext4 on the LV.
    const vgs = JSON.parse((await execa('vgs', ['--devices', D, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_free,lv_count', vg])).stdout);
    expect(vgs.report[0].vg[0]).toEqual({ vg_name: vg, vg_free: '0', lv_count: '1' });
    expect(await lvActive(vg, sr1, D)).toBe(false);

    const rec2 = recordToolCalls();
    try {
      await EXT_SR.attach(call, srDir, ctx);
      expect(rec2.argvs()).toEqual([
        ['lvchange', '--devices', D, '-ay', `${vg}/${sr1}`],
        ['fsck', '-a', lvPath],
        ['mount', lvPath, srDir],
      ]);
      expect(mountsAt(srDir)).toEqual(['ext4']);
      const rec3 = recordToolCalls();
      try {
        await EXT_SR.detach(call, srDir, ctx);
        expect(rec3.argvs()).toEqual([
          ['umount', srDir],
          ['lvchange', '--devices', D, '-an', `${vg}/${sr1}`],
        ]);
      } finally {
        rec3.stop();
      }
    } finally {
      rec2.stop();
    }
    expect(mountsAt(srDir)).toEqual([]);
    expect(existsSync(srDir)).toBe(false);
    expect(await lvActive(vg, sr1, D)).toBe(false);

    const rec4 = recordToolCalls();
    try {
      await EXT_SR.destroy!(call as unknown as RequestMap['sr_delete'], ctx);
      expect(rec4.argvs()).toEqual([
        pvsArgv({ devices: [D] }, scope),
        ['lvremove', '--devices', D, '-f', `${vg}/${sr1}`],
        ['vgremove', '--devices', D, vg],
        ['pvremove', '--devices', D, D],
      ]);
    } finally {
      rec4.stop();
    }
    const pvs = await execa('pvs', ['--devices', D, D], { reject: false });
    expect(pvs.exitCode).not.toBe(0);
    expect(pvs.stderr).toMatch(/Failed to find physical volume/);
  });

  it('through smctl: SR on a loop device with vhd, qcow2 and raw VDIs, snapshot, data across detach/reattach, probe, delete', { timeout: GUEST_CASE_MS }, async () => {
    const loop = await loopDevice(160);
    loops.push(loop);
    const s = scratch();
    scratches.push(s);
    const sr = await ok(s, ['sr-create', 'type=ext', `device-config:device=${loop.device}`, 'name-label=ext-test']);
    const srDir = join(s.mountRoot, sr);
    expect(mountsAt(srDir)).toEqual(['ext4']);
    expect(Number(srRecord(s, sr)['physical_size'])).toBeGreaterThan(100 * MiB);
    const m = inMountedSr(s, sr);

    const vdis: Record<string, string> = {};
    const data = new Map<string, Buffer>();
    for (const [i, format] of (['vhd', 'qcow2', 'raw'] as const).entries()) {
      const v = await createVdi(s, sr, format, '8MiB');
      vdis[format] = v;
      expect(smConfig(vdiRecord(s, v))['image-format']).toBe(format);
      expect(imageOf(m, v).format).toBe(format);
      const d = pattern(0x10 + i);
      await writeRange(imageOf(m, v), 3 * MiB, d);
      data.set(v, d);
    }
    const snap = await ok(s, ['vdi-snapshot', `uuid=${vdis['vhd']}`]);
    expect(vdiRecord(s, snap)!['is_a_snapshot']).toBe(true);
    const newer = pattern(0x77);
    await writeRange(imageOf(m, vdis['vhd']!), 3 * MiB, newer);

    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    expect(mountsAt(srDir)).toEqual([]);
    expect(await lvActive(vgNameOf(sr), sr, loop.device)).toBe(false);
    await ok(s, ['pbd-plug', `uuid=${pbd}`]);
    expect(mountsAt(srDir)).toEqual(['ext4']);

    // The data outlived detach + reattach (the file system and LV really persisted it).
    expect((await readRange(imageOf(m, vdis['vhd']!), 3 * MiB, newer.length)).equals(newer)).toBe(true);
    expect((await readRange(imageOf(m, snap), 3 * MiB, newer.length)).equals(data.get(vdis['vhd']!)!)).toBe(true);
    for (const format of ['qcow2', 'raw'] as const) {
      const v = vdis[format]!;
      expect((await readRange(imageOf(m, v), 3 * MiB, data.get(v)!.length)).equals(data.get(v)!)).toBe(true);
    }

    const probe = await ok(s, ['sr-probe', 'type=ext', `device-config:device=${loop.device}`]);
    expect(probe).toContain(`<UUID>${sr}</UUID>`);
    expect(probe).toContain(`<Devlist>${loop.device}</Devlist>`);
    expect(probe).toMatch(/<size>\d+<\/size>/);

    for (const v of [snap, ...Object.values(vdis)]) await ok(s, ['vdi-destroy', `uuid=${v}`]);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['sr-destroy', `uuid=${sr}`]);
    const pvs = await execa('pvs', ['--devices', loop.device, loop.device], { reject: false });
    expect(pvs.stderr).toMatch(/Failed to find physical volume/);
  });

  it('attaches a VG/LV/ext4 laid out by hand exactly as xapi\'s EXTSR does, with its VDI readable', { timeout: GUEST_CASE_MS }, async () => {
    const loop = await loopDevice(64);
    loops.push(loop);
    const D = loop.device;
    const vg = vgNameOf(sr2);
    // What EXTSR.create runs (spec §5.3), by hand.
    await execa('dd', ['if=/dev/zero', `of=${D}`, 'bs=1M', 'count=10', 'oflag=direct']);
    await execa('vgcreate', ['--metadatasize', '10M', vg, D]);
    await execa('vgchange', ['-an', vg]);
    const { stdout: free } = await execa('vgs', ['--noheadings', '--units', 'm', '--nosuffix', '-o', 'vg_free', vg]);
    await execa('lvcreate', ['-n', sr2, '-L', `${Math.floor(Number(free.trim()))}M`, vg, '-W', 'y', '--yes']);
    await execa('lvchange', ['-ay', `${vg}/${sr2}`]);
    await execa('mkfs.ext4', ['-F', `/dev/${vg}/${sr2}`]);
    // A VDI written by xapi's stack: a dynamic VHD at <mount>/<vdi>.vhd with known data.
    const vdi = '0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b';
    const hand = `/run/ext-hand-${process.pid}`;
    mkdirSync(hand, { recursive: true });
    await execa('mount', [`/dev/${vg}/${sr2}`, hand]);
    const d = pattern(0x5a);
    try {
      await execa('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', join(hand, `${vdi}.vhd`), '8M']);
      await writeRange({ path: join(hand, `${vdi}.vhd`), format: 'vhd' }, MiB, d);
    } finally {
      await execa('umount', [hand]);
      rmSync(hand, { recursive: true, force: true });
    }
    await execa('lvchange', ['-an', `${vg}/${sr2}`]);

    const probe = await EXT_SR.probe({ sr_uuid: '', device_config: { device: D } } as unknown as RequestMap['sr_probe'], ctx);
    expect(probe).toContain(`<UUID>${sr2}</UUID>`);
    const srDir = join(mountRoot, sr2);
    const call = { sr_uuid: sr2, device_config: { device: D } };
    await EXT_SR.attach(call, srDir, ctx);
    try {
      expect(mountsAt(srDir)).toEqual(['ext4']);
      expect(readdirSync(srDir)).toContain(`${vdi}.vhd`);
      expect((await readRange({ path: join(srDir, `${vdi}.vhd`), format: 'vhd' }, MiB, d.length)).equals(d)).toBe(true);
    } finally {
      await EXT_SR.detach(call, srDir, ctx);
    }
    expect(await lvActive(vg, sr2, D)).toBe(false);
    expect(lvDeviceOf(sr2)).toBe(`/dev/${vg}/${sr2}`);
  });

  it('an SR over two devices stripes one LV across both; probe lists both devices; delete frees both', { timeout: GUEST_CASE_MS }, async () => {
    const a = await loopDevice(48);
    const b = await loopDevice(48);
    loops.push(a, b);
    const s = scratch();
    scratches.push(s);
    const sr = await ok(s, ['sr-create', 'type=ext', `device-config:device=${a.device},${b.device}`, 'name-label=two']);
    const { stdout } = await execa('lvs', ['--devices', a.device, '--devices', b.device, '--noheadings', '-o', 'stripes', `${vgNameOf(sr)}/${sr}`]);
    expect(stdout.trim()).toBe('2');
    const probeBoth = await ok(s, ['sr-probe', 'type=ext', `device-config:device=${a.device},${b.device}`]);
    expect(probeBoth).toContain(`<UUID>${sr}</UUID>`);
    expect(probeBoth).toContain(`<Devlist>${a.device},${b.device}</Devlist>`);
    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['sr-destroy', `uuid=${sr}`]);
    for (const dev of [a.device, b.device]) {
      const pvs = await execa('pvs', ['--devices', dev, dev], { reject: false });
      expect(pvs.stderr).toMatch(/Failed to find physical volume/);
    }
  });
}, 1_800_000);
