// Ordinary vitest cases that run inside the test host (describeInTestHost): on the
// host this file is one test that boots the guest and runs these cases there.
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { describeInTestHost } from '../../src/testhost/vitest.js';

describeInTestHost('device-mapper from node in the guest', import.meta.url, () => {
  it('the kernel has the linear, snapshot and thin-pool targets', async () => {
    const { stdout } = await execa('dmsetup', ['targets']);
    for (const t of ['linear', 'snapshot', 'thin-pool', 'zero']) expect(stdout).toMatch(new RegExp(`^${t}\\s`, 'm'));
  });

  it('a thin pool and a thin LV activate on a loop PV', async () => {
    const img = `/run/testhost/thin-${process.pid}.img`;
    await execa('truncate', ['-s', '128M', img]);
    const { stdout: dev } = await execa('losetup', ['-f', '--show', img]);
    try {
      await execa('vgcreate', ['-q', 'VG_thin', dev]);
      await execa('lvcreate', ['-q', '-y', '--type', 'thin-pool', '-L', '64M', '-n', 'pool', 'VG_thin']);
      await execa('lvcreate', ['-q', '-y', '--type', 'thin', '-V', '256M', '--thinpool', 'pool', '-n', 'thin1', 'VG_thin']);
      const { stdout: attr } = await execa('lvs', ['--noheadings', '-o', 'lv_attr', 'VG_thin/thin1']);
      expect(attr.trim()).toMatch(/^Vwi-a-tz/);
      const { stdout: size } = await execa('blockdev', ['--getsize64', '/dev/VG_thin/thin1']);
      expect(Number(size)).toBe(256 * 1024 * 1024);
    } finally {
      await execa('vgremove', ['-q', '-y', '-f', 'VG_thin'], { reject: false });
      await execa('losetup', ['-d', dev], { reject: false });
    }
  });
});
