// The `ext` driver on this host (no device-mapper): bad input through smctl,
// and the LVM metadata side (probe, delete, a failed create cleaning up) with
// real LVM on loop devices, with the exact argv of every command checked.
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { devicesOf, EXT_SR, fullLvSize, vgNameOf } from '../../drivers/ext/handlers.js';
import { diskOf, holdsRootFileSystem, rootMountDevice, splitDevT } from '../../src/sdk/block-device.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import type { RequestMap } from '../../src/sdk/protocol/requests.js';
import { deviceMapperAvailable, pvsArgv, vgsArgv } from '../../src/sdk/tools/lvm.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { assertBuilt, scratch, smctl, type Scratch } from '../file-sr/helpers.js';
import { dmArgs, loopDevice, type Loop } from './helpers.js';

const ctx = {} as HandlerContext;
const SR = '7b3c1d2e-0f1a-4b2c-8d3e-4f5a6b7c8d01';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

async function loop(mib = 64): Promise<Loop> {
  const l = await loopDevice(mib);
  cleanups.push(l.cleanup);
  return l;
}
function scr(): Scratch {
  const s = scratch();
  cleanups.push(s.cleanup);
  return s;
}

function srErrorOf(fn: () => unknown): SRError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SRError) return e;
    throw e;
  }
  throw new Error('expected an SRError');
}

/** Lay out an EXT SR's VG and LV (metadata) by hand, as EXTSR's create does. */
async function handLayout(dev: string, sr: string): Promise<void> {
  const dm = dmArgs();
  await execa('pvcreate', ['--devices', dev, ...dm, '-ff', '-y', '--metadatasize', '10M', dev]);
  await execa('vgcreate', ['--devices', dev, ...dm, '--metadatasize', '10M', vgNameOf(sr), dev]);
  await execa('lvcreate', ['--devices', dev, ...dm, '-n', sr, '-l', '100%FREE', vgNameOf(sr), '-W', 'y', '--yes']);
}

describe('ext: device-config checks', () => {
  it('sr-create without device-config:device fails with ConfigDeviceMissing (90) naming the key', async () => {
    const s = scr();
    const r = await smctl(s, ['sr-create', 'type=ext', 'name-label=x']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_90');
    expect(r.stderr).toContain('device-config:device is required');
  });

  it('sr-create and sr-probe with a device that does not exist fail with InvalidDev (19) naming it', async () => {
    const s = scr();
    for (const cmd of [['sr-create', 'name-label=x'], ['sr-probe']]) {
      const r = await smctl(s, [...cmd, 'type=ext', 'device-config:device=/dev/no-such-disk']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain('SR_BACKEND_FAILURE_19');
      expect(r.stderr).toContain('/dev/no-such-disk does not exist');
    }
    const probe = await smctl(s, ['sr-probe', 'type=ext']);
    expect(probe.stderr).toContain('SR_BACKEND_FAILURE_90');
  });

  it('refuses a regular file, a relative path, an empty list entry and a device named twice', async () => {
    const dir = mkdtempSync('/var/tmp/ext-dc-');
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'f'), 'x');
    const l = await loop(16);
    expect(srErrorOf(() => devicesOf({ device: join(dir, 'f') })).detail).toMatch(/is not a block device/);
    expect(srErrorOf(() => devicesOf({ device: 'sdb' })).code).toBe(19);
    expect(srErrorOf(() => devicesOf({ device: `${l.device},` })).code).toBe(19);
    expect(srErrorOf(() => devicesOf({ device: `${l.device},${l.device}` })).detail).toMatch(/twice/);
    expect(srErrorOf(() => devicesOf({ device: ' ' })).code).toBe(90);
    expect(devicesOf({ device: ` ${l.device} ` })).toEqual([l.device]);
  });
});

/** The /dev node of the block device `/` is mounted from on this machine, if it is one. */
function rootBlockDevice(): string | undefined {
  const root = rootMountDevice(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (root === undefined) return undefined;
  const name = /^DEVNAME=(.+)$/m.exec(readFileSync(`/sys/dev/block/${root.major}:${root.minor}/uevent`, 'utf8'))?.[1];
  return name === undefined ? undefined : `/dev/${name}`;
}

describe('ext: the root disk is never used (Rootdev, 105)', () => {
  const rootDev = rootBlockDevice();
  it.skipIf(rootDev === undefined)(`sr-create on the device holding / (${rootDev ?? 'none here'}) fails with Rootdev naming it, before it opens the device`, async () => {
    const s = scr();
    // The driver checks before it opens the device: reaching its O_EXCL open would have
    // been refused with another error (in use, or not permitted) instead of Rootdev.
    const r = await smctl(s, ['sr-create', 'type=ext', 'name-label=x', `device-config:device=${rootDev}`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_105');
    expect(r.stderr).toContain(`${rootDev} holds this host's root file system`);
  });

  it.skipIf(rootDev === undefined)('the lvm driver refuses it the same way (shared device-config:device rules)', async () => {
    const s = scr();
    const r = await smctl(s, ['sr-create', 'type=lvm', 'name-label=x', `device-config:device=${rootDev}`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_105');
    expect(r.stderr).toContain(`${rootDev} holds this host's root file system`);
  });

  it('the partition holding / and its whole disk are root; another partition of that disk and other disks are not', async () => {
    // A sysfs tree shaped like the kernel's: disk 240:0 (a local/experimental major, so no loop device shares it) with partitions 240:1 (root) and 240:2.
    const sys = mkdtempSync('/var/tmp/ext-sysfs-');
    cleanups.push(async () => rmSync(sys, { recursive: true, force: true }));
    const disk = join(sys, 'devices/virtual/block/vdx');
    for (const [part, num] of [['vdx1', '240:1'], ['vdx2', '240:2']] as const) {
      mkdirSync(join(disk, part), { recursive: true });
      writeFileSync(join(disk, part, 'partition'), part.slice(-1));
      writeFileSync(join(disk, part, 'dev'), `${num}\n`);
    }
    writeFileSync(join(disk, 'dev'), '240:0\n');
    mkdirSync(join(sys, 'dev/block'), { recursive: true });
    symlinkSync(join(disk, 'vdx1'), join(sys, 'dev/block/240:1'));
    symlinkSync(join(disk, 'vdx2'), join(sys, 'dev/block/240:2'));
    symlinkSync(disk, join(sys, 'dev/block/240:0'));
    expect(diskOf({ major: 240, minor: 1 }, sys)).toEqual({ major: 240, minor: 0 });
    expect(diskOf({ major: 240, minor: 0 }, sys)).toEqual({ major: 240, minor: 0 });

    const mountinfo = ['22 27 0:21 / /proc rw - proc proc rw', '27 1 240:1 / / rw,relatime - ext4 /dev/vdx1 rw', ''].join('\n');
    expect(rootMountDevice(mountinfo)).toEqual({ major: 240, minor: 1 });
    // A tmpfs or overlay root (the test host's guest) is on no disk.
    expect(rootMountDevice('1 0 0:31 / / rw - tmpfs tmpfs rw\n')).toBeUndefined();

    // Real device nodes with those numbers, checked through stat like the driver does.
    const nodes = mkdtempSync('/var/tmp/ext-nodes-');
    cleanups.push(async () => rmSync(nodes, { recursive: true, force: true }));
    for (const [n, minor] of [['disk', 0], ['root', 1], ['other', 2]] as const) await execa('mknod', [join(nodes, n), 'b', '240', String(minor)]);
    expect(splitDevT(statSync(join(nodes, 'other'), { bigint: true }).rdev)).toEqual({ major: 240, minor: 2 });
    expect(holdsRootFileSystem(join(nodes, 'root'), mountinfo, sys)).toBe(true);
    expect(holdsRootFileSystem(join(nodes, 'disk'), mountinfo, sys)).toBe(true);
    expect(holdsRootFileSystem(join(nodes, 'other'), mountinfo, sys)).toBe(false);
    const l = await loop(16);
    expect(holdsRootFileSystem(l.device, mountinfo, sys)).toBe(false);
  });
});

describe('ext: LVM metadata on real loop devices', () => {
  it('probe lists the XSLocalEXT- VGs of the given devices only, with the exact pvs/vgs argv', async () => {
    const a = await loop();
    const b = await loop();
    const c = await loop();
    await handLayout(a.device, SR);
    const dm = dmArgs();
    await execa('pvcreate', ['--devices', b.device, ...dm, '-ff', '-y', b.device]);
    await execa('vgcreate', ['--devices', b.device, ...dm, 'VG_other', b.device]);

    const rec = recordToolCalls();
    let xml: string;
    try {
      xml = await EXT_SR.probe({ device_config: { device: `${a.device},${b.device},${c.device}` } } as unknown as RequestMap['sr_probe'], ctx);
      const vg = vgNameOf(SR);
      expect(rec.argvs()).toEqual([
        pvsArgv({ devices: [a.device] }, { devices: [a.device] }),
        pvsArgv({ devices: [b.device] }, { devices: [b.device] }),
        pvsArgv({ devices: [c.device] }, { devices: [c.device] }),
        vgsArgv({ vg }, { devices: [a.device, b.device, c.device] }),
      ]);
      expect(rec.argvs()[0]).toEqual(['pvs', '--devices', a.device, ...dm, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'pv_name,vg_name,pv_uuid,pv_size,pv_free,pe_start', a.device]);
    } finally {
      rec.stop();
    }
    const size = JSON.parse((await execa('vgs', ['--devices', a.device, ...dm, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_size', vgNameOf(SR)])).stdout).report[0].vg[0].vg_size;
    expect(xml).toBe(
      ['<?xml version="1.0" ?>', '<SRlist>', '\t<SR>', `\t\t<UUID>${SR}</UUID>`, `\t\t<Devlist>${a.device}</Devlist>`, `\t\t<size>${size}</size>`, '\t</SR>', '</SRlist>', ''].join('\n'),
    );
    // VG_other is no EXT SR; the blank device holds nothing.
    expect(xml).not.toContain('VG_other');
    const blank = await EXT_SR.probe({ device_config: { device: c.device } } as unknown as RequestMap['sr_probe'], ctx);
    expect(blank).toBe('<?xml version="1.0" ?>\n<SRlist/>\n');
  });

  it('sr_delete removes LV, VG and PV with the exact argv; a device without the VG is VolNotFound (92)', async () => {
    const a = await loop();
    await handLayout(a.device, SR);
    const D = a.device;
    const vg = vgNameOf(SR);
    const dm = dmArgs();
    const rec = recordToolCalls();
    try {
      await EXT_SR.destroy!({ sr_uuid: SR, device_config: { device: D } } as unknown as RequestMap['sr_delete'], ctx);
      expect(rec.argvs()).toEqual([
        pvsArgv({ devices: [D] }, { devices: [D] }),
        ['lvremove', '--devices', D, ...dm, '-f', `${vg}/${SR}`],
        ['vgremove', '--devices', D, ...dm, vg],
        ['pvremove', '--devices', D, ...dm, D],
      ]);
    } finally {
      rec.stop();
    }
    const pvs = await execa('pvs', ['--devices', D, ...dm, D], { reject: false });
    expect(pvs.stderr).toMatch(/Failed to find physical volume/);

    const b = await loop();
    await execa('pvcreate', ['--devices', b.device, ...dm, '-ff', '-y', b.device]);
    const e = await EXT_SR.destroy!({ sr_uuid: SR, device_config: { device: b.device } } as unknown as RequestMap['sr_delete'], ctx).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).code).toBe(92);
    expect((e as SRError).detail).toContain(vg);
  });

  // Without device-mapper the LV cannot be activated, so mkfs fails: what matters is
  // the exact commands up to there and that nothing of the SR stays on the device.
  it.runIf(!deviceMapperAvailable())('a create that fails at mkfs (no device-mapper here) runs EXTSR\'s commands and leaves the device blank', async () => {
    const a = await loop(96);
    const D = a.device;
    const vg = vgNameOf(SR);
    const dm = dmArgs();
    const rec = recordToolCalls();
    let err: unknown;
    try {
      await EXT_SR.create({ sr_uuid: SR, device_config: { device: D } } as unknown as RequestMap['sr_create'], ctx).catch((x: unknown) => {
        err = x;
      });
      const argvs = rec.argvs();
      const lvcreate = argvs.find((x) => x[0] === 'lvcreate')!;
      expect(argvs).toEqual([
        pvsArgv({ devices: [D] }, { devices: [D] }),
        ['pvcreate', '--devices', D, ...dm, '-ff', '-y', '--metadatasize', '10M', D],
        ['vgcreate', '--devices', D, ...dm, '--metadatasize', '10M', vg, D],
        vgsArgv({ vg }, { devices: [D] }),
        pvsArgv({ devices: [D] }, { devices: [D] }),
        ['lvcreate', '--devices', D, ...dm, '-n', SR, '-L', lvcreate.at(-5)!, vg, '-W', 'y', '--yes'],
        ['lvchange', '--devices', D, ...dm, '-ay', `${vg}/${SR}`],
        ['mkfs.ext4', '-F', `/dev/${vg}/${SR}`],
        ['vgremove', '--devices', D, ...dm, '-f', vg],
        ['pvremove', '--devices', D, ...dm, D],
      ]);
      // All free space of the VG (96 MiB device, 10 MiB metadata area, 4 MiB extents).
      expect(lvcreate.at(-5)).toBe(`${(96 - 12) * 1024 * 1024}b`);
    } finally {
      rec.stop();
    }
    expect(err).toBeInstanceOf(SRError);
    expect((err as SRError).key).toBe('LVMFilesystem');
    const pvs = await execa('pvs', ['--devices', D, ...dm, D], { reject: false });
    expect(pvs.stderr).toMatch(/Failed to find physical volume/);
  });
});

describe('ext: LV size', () => {
  it('one device: all of the VG; striped: the smallest PV\'s free space times the devices, in whole extents', () => {
    const pv = (pvFree: number) => ({ pvName: '/dev/x', vgName: 'v', pvUuid: 'u', pvSize: pvFree, pvFree, peStart: 0 });
    const ext = 4 * 1024 * 1024;
    expect(fullLvSize([pv(100 * ext)], 100 * ext, ext)).toBe(100 * ext);
    expect(fullLvSize([pv(100 * ext), pv(60 * ext + 5)], 160 * ext, ext)).toBe(120 * ext);
  });
});
