// mkfs.ext4, fsck -a and mount/umount (plain and bind) on a real loop device,
// with the mount-point check read from /proc/self/mountinfo.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsck } from '../../src/sdk/tools/fsck.js';
import { mkfsExt4 } from '../../src/sdk/tools/mkfs.js';
import { bindMount, findMount, isMountPoint, mount, parseMountInfo, umount } from '../../src/sdk/tools/mount.js';
import { ToolError } from '../../src/sdk/tools/run.js';
import { createLoopDevice, type LoopDevice } from '../helpers/loop.js';

const MiB = 1024 * 1024;
let disk: LoopDevice;
let dir: string;
const mounted: string[] = [];

beforeAll(async () => {
  disk = await createLoopDevice(64 * MiB);
  dir = await mkdtemp('/var/tmp/smapi-ts-mnt-');
});

afterAll(async () => {
  for (const m of mounted.reverse()) {
    if (await isMountPoint(m)) await execa('umount', ['-l', m], { reject: false });
  }
  await disk?.detach();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('mkfs.ext4 + fsck (real, loop device)', () => {
  it('mkfs.ext4 makes a file system with the given label, which fsck -a finds clean', async () => {
    await mkfsExt4({ device: disk.device, label: 'smapi-test', quiet: true });
    expect((await execa('e2label', [disk.device])).stdout.trim()).toBe('smapi-test');
    expect(await fsck({ device: disk.device })).toEqual({ exitCode: 0, corrected: false });
  });

  it('fsck -a exit 1 (errors corrected) is success with corrected: true', async () => {
    // Wrong free-block count + "not cleanly unmounted": e2fsck -p repairs it and exits 1.
    await execa('debugfs', ['-w', '-R', 'ssv free_blocks_count 12345', disk.device]);
    await execa('debugfs', ['-w', '-R', 'ssv state 0', disk.device]);
    expect(await fsck({ device: disk.device })).toEqual({ exitCode: 1, corrected: true });
    expect(await fsck({ device: disk.device })).toEqual({ exitCode: 0, corrected: false });
  });

  it('fsck of a device without a file system raises ToolError with the exit code', async () => {
    const blank = await createLoopDevice(8 * MiB);
    try {
      await execa('dd', ['if=/dev/zero', `of=${blank.device}`, 'bs=1M', 'count=1', 'conv=notrunc', 'status=none']);
      const err = (await fsck({ device: blank.device }).catch((e: unknown) => e)) as ToolError;
      expect(err).toBeInstanceOf(ToolError);
      expect(err.command).toEqual(['fsck', '-a', blank.device]);
      expect(err.exitCode).toBeGreaterThanOrEqual(4);
    } finally {
      await blank.detach();
    }
  });
});

describe('mount / umount (real, loop device)', () => {
  it('mounts ext4, reports it from mountinfo, and unmounts', async () => {
    const target = join(dir, 'sr');
    await mkdir(target);
    expect(await isMountPoint(target)).toBe(false);
    await mount({ source: disk.device, target, fsType: 'ext4', options: ['rw', 'noatime'] });
    mounted.push(target);
    const m = await findMount(target);
    expect(m).toMatchObject({ mountPoint: target, fsType: 'ext4', source: disk.device, root: '/' });
    expect(m?.mountOptions).toContain('noatime');
    await mkdir(join(target, 'sub'));
    await writeFile(join(target, 'sub', 'hello.txt'), 'hi');
  });

  it('bind-mounts a directory (root = the bound subdirectory) and unmounts it', async () => {
    const src = join(dir, 'sr', 'sub');
    const target = join(dir, 'bound');
    await mkdir(target);
    await bindMount({ source: src, target });
    mounted.push(target);
    expect(await readFile(join(target, 'hello.txt'), 'utf8')).toBe('hi');
    expect(await findMount(target)).toMatchObject({ mountPoint: target, root: '/sub', fsType: 'ext4' });
    await umount({ target });
    expect(await isMountPoint(target)).toBe(false);
  });

  it('umount of the ext4 mount; a second umount raises ToolError naming the target', async () => {
    const target = join(dir, 'sr');
    await umount({ target });
    expect(await isMountPoint(target)).toBe(false);
    const err = (await umount({ target }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.message).toContain(`umount ${target}: exited with code`);
    expect(err.stderr).toContain('not mounted');
  });

  it('a path that does not exist is not a mount point', async () => {
    expect(await isMountPoint(join(dir, 'nope'))).toBe(false);
  });
});

describe('parseMountInfo', () => {
  it('decodes octal escapes and optional fields', () => {
    const text =
      '36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:2 - ext4 /dev/my\\040disk rw,errors=continue\n' +
      '40 1 0:22 / /run rw,nosuid - tmpfs tmpfs rw,size=1024k\n';
    expect(parseMountInfo(text)).toEqual([
      {
        mountId: 36, parentId: 35, device: '98:0', root: '/mnt1', mountPoint: '/mnt with space',
        mountOptions: ['rw', 'noatime'], fsType: 'ext4', source: '/dev/my disk', superOptions: ['rw', 'errors=continue'],
      },
      {
        mountId: 40, parentId: 1, device: '0:22', root: '/', mountPoint: '/run',
        mountOptions: ['rw', 'nosuid'], fsType: 'tmpfs', source: 'tmpfs', superOptions: ['rw', 'size=1024k'],
      },
    ]);
  });

  it('refuses a malformed line', () => {
    expect(() => parseMountInfo('garbage line\n')).toThrow(/cannot parse line "garbage line"/);
  });
});
