// Images on block devices (what an LV is): sizes come from sysfs, content moves
// through the same tools. A loop device stands in for an LV.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { opsFor, readRange, virtualSizeOf, writeRange } from '../../src/sdk/formats/index.js';
import { devMajorMinor } from '../../src/sdk/formats/size.js';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import { createLoopDevice, type LoopDevice } from '../helpers/loop.js';
import { MiB, freshDir, pattern, requireVhdUtil, useTempRoot } from './helpers.js';
import { join } from 'node:path';
import { statSync } from 'node:fs';

const root = useTempRoot();
requireVhdUtil();

let loop: LoopDevice;
beforeAll(async () => {
  loop = await createLoopDevice(24 * MiB);
});
afterAll(async () => {
  await loop?.detach();
});

describe('a raw image on a block device', () => {
  it('info reports the device size; read and write go through qemu', async () => {
    const ref = { path: loop.device, format: 'raw' as const };
    const info = await opsFor('raw').info(loop.device);
    expect(info).toMatchObject({ format: 'raw', virtualSize: 24 * MiB, physicalSize: 24 * MiB, parent: null });
    const data = pattern(MiB + 512, 71);
    await writeRange(ref, 3 * MiB, data);
    expect((await readRange(ref, 3 * MiB, data.length)).equals(data)).toBe(true);
    // The bytes really are on the device.
    const { stdout } = await execa('dd', [`if=${loop.device}`, 'bs=512', `skip=${(3 * MiB) / 512}`, 'count=1', 'status=none'], { encoding: 'buffer' });
    expect(Buffer.from(stdout).equals(data.subarray(0, 512))).toBe(true);
  });

  it('resize is the SR\'s job (lvextend), refused here with VDIResize', async () => {
    const e = await opsFor('raw').resize(loop.device, 48 * MiB).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).key).toBe('VDIResize');
    expect((e as SRError).message).toContain('block device');
  });

  it('a VHD copied onto the device reads back with its exact size (header read, no footer at the device end)', async () => {
    const dir = freshDir(root());
    await opsFor('vhd').create(join(dir, 'v.vhd'), 10 * MiB);
    await writeRange({ path: join(dir, 'v.vhd'), format: 'vhd' }, 0, pattern(4096, 72));
    await execa('dd', [`if=${join(dir, 'v.vhd')}`, `of=${loop.device}`, 'bs=1M', 'conv=fsync', 'status=none']);
    expect(readVhdHeader(loop.device)).toMatchObject({ diskType: 'dynamic', currentSize: 10 * MiB });
    expect(virtualSizeOf({ path: loop.device, format: 'vhd' })).toBe(10 * MiB);
  });

  it('decodes dev_t the way the kernel encodes it', () => {
    const [major, minor] = devMajorMinor(statSync(loop.device).rdev);
    expect(major).toBe(7); // loop
    expect(`/dev/loop${minor}`).toBe(loop.device);
  });
});
