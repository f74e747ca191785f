// VHDs on block devices (how LVM SRs hold them): a loop device stands in for an LV.
// blktap writes in place, keeps the primary footer at the end of the device, and
// never truncates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, ok, prng, randomBuffer, readAt, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let loop = '';
beforeAll(() => {
  t = tempDir('blk');
  const img = join(t.dir, 'lv.img');
  writeFileSync(img, '');
  truncateSync(img, 64 * MiB);
  loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
});
afterAll(() => {
  try {
    if (loop) execFileSync('losetup', ['-d', loop]);
  } finally {
    t.cleanup();
  }
});

describe('VHD on a loop device', () => {
  it('create, write, hide, scan, check and snapshot onto a file', () => {
    ok(['create', '-n', loop, '-s', '40']);
    // primary footer at the end of the device, copy at 0
    expect(readAt(loop, 64 * MiB - 512, 8).toString()).toBe('conectix');
    expect(readAt(loop, 64 * MiB - 512, 512).equals(readAt(loop, 0, 512))).toBe(true);
    const data = randomBuffer(prng(5), 3 * MiB);
    ok(['write', '-n', loop, '-o', '4096'], { input: data });
    expect(vhdUtil(['read', '-n', loop, '-R', '4096', '-c', String(3 * MiB)]).raw.equals(data)).toBe(true);
    ok(['set', '-n', loop, '-f', 'hidden', '-v', '1']);
    expect(readAt(loop, 64 * MiB - 512, 512)[85]).toBe(1);
    const name = loop.split('/').pop();
    expect(ok(['scan', '-f', loop])).toBe(`vhd=${name} capacity=${40 * MiB} size=${64 * MiB} hidden=1 parent=none\n`);
    expect(ok(['check', '-n', loop])).toBe(`${loop} is valid\n`);
    const child = join(t.dir, 'child.vhd');
    ok(['snapshot', '-n', child, '-p', loop]);
    expect(ok(['query', '-n', child, '-p', '-d'])).toBe(`${loop}\nchain depth: 2\n`);
  });

  it('a device node that is not under the kernel\'s name (as /dev/mapper/<vg>-<lv>) is sized by its device number', () => {
    const rdev = statSync(loop).rdev;
    const node = join(t.dir, 'VG_XenStorage-x-VHD-y');
    execFileSync('mknod', [node, 'b', String(Math.floor(rdev / 256) & 0xfff), String(rdev & 0xff)]);
    ok(['create', '-n', node, '-s', '20']);
    // The footer goes at the end of the 64 MiB device, which only the device's real size tells.
    expect(readAt(loop, 64 * MiB - 512, 8).toString()).toBe('conectix');
    expect(ok(['query', '-n', node, '-v'])).toBe(`${20}\n`);
  });
});

describe('a VHD whose primary footer is not at the end of its LV (as xapi leaves one in a thick LV)', () => {
  it('query, set, modify -s and resize -f open it by its footer copy at 0, as libvhd does; modify -s puts the footer at the new end', () => {
    // The image as a file (footer right after its metadata), copied to the start of the 64 MiB "LV".
    const file = join(t.dir, 'xapi.vhd');
    ok(['create', '-n', file, '-s', '20', '-S', '2097152']);
    const img = readFileSync(file);
    execFileSync('dd', [`if=${file}`, `of=${loop}`, 'bs=1M', 'conv=notrunc,fsync', 'status=none']);
    execFileSync('dd', ['if=/dev/zero', `of=${loop}`, 'bs=512', `seek=${64 * 2048 - 1}`, 'count=1', 'conv=notrunc,fsync', 'status=none']);
    // No footer at the device's end: check (strict) says so; the others read the copy at 0.
    expect(vhdUtil(['check', '-n', loop]).stdout.split('\n')[0]).toBe('primary footer invalid: invalid cookie');
    expect(ok(['query', '-n', loop, '-v', '-s'])).toBe(`20\n${img.length}\n`);
    ok(['set', '-n', loop, '-f', 'hidden', '-v', '1']);
    expect(ok(['query', '-n', loop, '-f'])).toBe('hidden: 1\n');
    ok(['set', '-n', loop, '-f', 'hidden', '-v', '0']);
    ok(['resize', '-n', loop, '-s', '40', '-f']);
    // What a deflate to 8 MiB does: footer at 8 MiB - 512, then the LV cut there.
    ok(['modify', '-n', loop, '-s', String(8 * MiB)]);
    expect(readAt(loop, 8 * MiB - 512, 8).toString()).toBe('conectix');
    const cut = execFileSync('losetup', ['-f', '--show', '--sizelimit', String(8 * MiB), join(t.dir, 'lv.img')], { encoding: 'utf8' }).trim();
    try {
      expect(ok(['check', '-n', cut])).toBe(`${cut} is valid\n`);
      expect(ok(['query', '-n', cut, '-v'])).toBe('40\n');
    } finally {
      execFileSync('losetup', ['-d', cut]);
    }
  });
});
