// Byte-level layout of what `create`/`snapshot` write, against spec vhd-util.md §2,
// and the observed output of the §3/§6 example sequence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { MiB, checksum, filled, ok, readAt, size, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('golden');
});
afterAll(() => t.cleanup());

describe('empty 100 MiB dynamic disk', () => {
  it('is 3584 bytes laid out as blktap writes it', () => {
    const f = join(t.dir, 'base.vhd');
    ok(['create', '-n', f, '-s', '100']);
    expect(size(f)).toBe(3584);
    const footer = readAt(f, 3072, 512);
    expect(readAt(f, 0, 512)).toEqual(footer); // copy at offset 0 is identical
    expect(footer.toString('latin1', 0, 8)).toBe('conectix');
    expect(footer.readUInt32BE(8)).toBe(2); // features: reserved bit only
    expect(footer.readUInt32BE(12)).toBe(0x00010000);
    expect(footer.readBigUInt64BE(16)).toBe(512n);
    const now = Math.floor(Date.now() / 1000) - 946684800;
    expect(Math.abs(footer.readUInt32BE(24) - now)).toBeLessThan(60);
    expect(footer.subarray(28, 32)).toEqual(Buffer.from('tap\0', 'latin1'));
    expect(footer.readUInt32BE(32)).toBe(0x00010003);
    expect(footer.readUInt32BE(36)).toBe(0);
    expect(footer.readBigUInt64BE(40)).toBe(104857600n);
    expect(footer.readBigUInt64BE(48)).toBe(104857600n);
    expect([footer.readUInt16BE(56), footer[58], footer[59]]).toEqual([1003, 12, 17]);
    expect(footer.readUInt32BE(60)).toBe(3);
    expect(footer.readUInt32BE(64)).toBe(checksum(footer, 64));
    expect(footer[68 + 6]! >> 4).toBe(4); // UUID v4
    expect(footer[84]).toBe(0);
    expect(footer[85]).toBe(0); // hidden
    expect(footer.subarray(86).every((x) => x === 0)).toBe(true);

    const header = readAt(f, 512, 1024);
    expect(header.toString('latin1', 0, 8)).toBe('cxsparse');
    expect(header.readBigUInt64BE(8)).toBe(0xffffffffffffffffn);
    expect(header.readBigUInt64BE(16)).toBe(1536n);
    expect(header.readUInt32BE(24)).toBe(0x00010000);
    expect(header.readUInt32BE(28)).toBe(50);
    expect(header.readUInt32BE(32)).toBe(2 * MiB);
    expect(header.readUInt32BE(36)).toBe(checksum(header, 36));
    expect(header.subarray(40, 1024).every((x, i) => i === 0 || x === 0 || true)).toBe(true);
    expect(header.subarray(40, 56).every((x) => x === 0)).toBe(true); // parent uuid
    expect(header.subarray(576, 768).every((x) => x === 0)).toBe(true); // no locators

    const bat = readAt(f, 1536, 512);
    expect(bat.subarray(0, 200).every((x) => x === 0xff)).toBe(true);
    expect(bat.subarray(200).every((x) => x === 0)).toBe(true); // padding is zero

    const bmh = readAt(f, 2048, 512);
    expect(bmh.toString('latin1', 0, 8)).toBe('tdbatmap');
    expect(bmh.readBigUInt64BE(8)).toBe(2560n);
    expect(bmh.readUInt32BE(16)).toBe(1);
    expect(bmh.readUInt32BE(20)).toBe(0x00010002);
    expect(bmh.readUInt32BE(24)).toBe(0xffffffff); // checksum of an empty map
    expect(bmh.subarray(28).every((x) => x === 0)).toBe(true); // marker, keyhash
    expect(readAt(f, 2560, 512).every((x) => x === 0)).toBe(true);
  });

  it('rounds the size up to 2 MiB and keeps orig_size equal', () => {
    const f = join(t.dir, 'odd.vhd');
    ok(['create', '-n', f, '-s', '101']);
    const footer = readAt(f, size(f) - 512, 512);
    expect(footer.readBigUInt64BE(40)).toBe(BigInt(102 * MiB));
    expect(footer.readBigUInt64BE(48)).toBe(BigInt(102 * MiB));
    expect(ok(['query', '-n', f, '-v'])).toBe('102\n');
  });

  it('create -S 1024 -s 100 preallocates a 512-entry BAT (5120 bytes)', () => {
    const f = join(t.dir, 'pre.vhd');
    ok(['create', '-n', f, '-s', '100', '-S', '1024']);
    expect(size(f)).toBe(5120);
    expect(readAt(f, 512 + 28, 4).readUInt32BE(0)).toBe(512);
    expect(ok(['query', '-n', f, '-S', '-v'])).toBe('100\n1024\n');
  });

  it('-S smaller than -s is refused and creates nothing', () => {
    const f = join(t.dir, 'bad-pre.vhd');
    const r = vhdUtil(['create', '-n', f, '-s', '100', '-S', '50']);
    expect(r.status).toBe(22);
    expect(r.stdout).toBe('Error: <-S size> must be greater than <-s size>\n');
    expect(vhdUtil(['query', '-n', f, '-v']).status).toBe(2);
  });
});

describe('2 TiB dynamic disk', () => {
  it('is 4,327,936 bytes with a 1,048,576-entry BAT and the geometry wrap quirk', () => {
    const f = join(t.dir, 'big.vhd');
    ok(['create', '-n', f, '-s', '2097152']);
    expect(size(f)).toBe(4327936);
    const footer = readAt(f, 4327936 - 512, 512);
    expect([footer.readUInt16BE(56), footer[58], footer[59]]).toEqual([0, 4, 17]);
    expect(readAt(f, 512 + 28, 4).readUInt32BE(0)).toBe(1048576);
    const bmh = readAt(f, 1536 + 4 * MiB, 512);
    expect(bmh.toString('latin1', 0, 8)).toBe('tdbatmap');
    expect(bmh.readUInt32BE(16)).toBe(256);
    expect(bmh.readUInt32BE(24)).toBe(0xffffffff);
    expect(ok(['read', '-n', f, '-p'])).toContain('Geometry            : Cyl: 0, Hds: 4, Sctrs: 17\n');
  });
});

describe('empty differencing child', () => {
  it('is 5120 bytes with the exact locator table of spec §2.5', () => {
    require_mkdir(join(t.dir, 'loc'));
    const base = join(t.dir, 'loc', 'base.vhd');
    const child = join(t.dir, 'loc', 'child.vhd');
    ok(['create', '-n', base, '-s', '100']);
    ok(['snapshot', '-n', child, '-p', base]);
    expect(size(child)).toBe(5120);
    const table = readAt(child, 0x440, 72).toString('hex');
    expect(table).toBe(
      '4d616358' + '00000200' + '00000011' + '00000000' + '0000000000000c00' +
        '57326b75' + '00000200' + '00000014' + '00000000' + '0000000000000e00' +
        '57327275' + '00000200' + '00000014' + '00000000' + '0000000000001000',
    );
    expect(readAt(child, 3072, 17).toString()).toBe('file://./base.vhd');
    expect(readAt(child, 3584, 20).toString('utf16le')).toBe('.\\base.vhd');
    expect(readAt(child, 4096, 20).toString('utf16le')).toBe('.\\base.vhd');
    expect(readAt(child, 3072 + 17, 512 - 17).every((x) => x === 0)).toBe(true);
    const header = readAt(child, 512, 1024);
    const baseFooter = readAt(base, 0, 512);
    expect(header.subarray(40, 56)).toEqual(baseFooter.subarray(68, 84)); // parent uuid
    expect(header.subarray(64, 64 + 16)).toEqual(Buffer.from('base.vhd', 'utf16le').swap16());
    expect(header.subarray(64 + 16, 576).every((x) => x === 0)).toBe(true);
    const footer = readAt(child, 5120 - 512, 512);
    expect(footer.readUInt32BE(60)).toBe(4);
    expect(footer.readBigUInt64BE(48)).toBe(104857600n);
  });

  it('writes locators relative to the child for a parent two levels up', () => {
    const deep = join(t.dir, 'sub', 'deeper');
    require_mkdir(deep);
    const base = join(t.dir, 'rbase.vhd');
    ok(['create', '-n', base, '-s', '10']);
    ok(['snapshot', '-n', join(deep, 'c.vhd'), '-p', base]);
    const dump = ok(['read', '-n', join(deep, 'c.vhd'), '-p']);
    expect(dump).toContain('decoded name : ../../rbase.vhd\n');
    const c = join(deep, 'c.vhd');
    expect(readAt(c, 3072, 21).toString()).toBe('file://../../rbase.vhd'.slice(0, 21));
    expect(ok(['query', '-n', c, '-p', '-u'])).toBe('../../rbase.vhd\n');
    expect(ok(['query', '-n', c, '-p'], { cwd: '/' })).toBe(`${t.dir}/rbase.vhd\n`);
  });
});

import { mkdirSync } from 'node:fs';
function require_mkdir(d: string) {
  mkdirSync(d, { recursive: true });
}

describe('the spec §6 example sequence', () => {
  it('base: create, write, query, check', () => {
    const d = t.dir;
    const base = join(d, 'base.vhd');
    ok(['create', '-n', base, '-s', '100']);
    expect(ok(['query', '-n', base, '-v', '-s', '-p', '-f', '-m', '-d', '-a', '-S'], { cwd: d })).toBe(
      '100\n3584\n' + `${base} has no parent\n` + 'hidden: 0\nmarker: 0\nchain depth: 1\n0\n100\n',
    );
    ok(['write', '-n', base, '-o', '0'], { input: filled(0xaa, 5 * MiB) });
    ok(['write', '-n', base, '-o', String(20 * MiB)], { input: filled(0xbb, MiB) });
    ok(['write', '-n', base, '-o', String(50 * MiB)], { input: filled(0xcc, 512) });
    expect(size(base)).toBe(10506752);
    expect(ok(['query', '-n', base, '-a'])).toBe('5\n');
    expect(ok(['read', '-n', base, '-a']).slice(0, 1)).toBe('\xc0');
    expect(ok(['read', '-n', base, '-b', '0', '-c', '3'])).toBe(
      'block: 0: offset: 3584\nblock: 1: offset: 2104832\nblock: 2: offset: 4206080\n',
    );
    expect(ok(['check', '-n', 'base.vhd'], { cwd: d })).toBe('base.vhd is valid\n');
  });

  it('child: snapshot, write, read, query', () => {
    const d = t.dir;
    const base = join(d, 'base.vhd');
    const child = join(d, 'child.vhd');

    ok(['snapshot', '-n', 'child.vhd', '-p', 'base.vhd'], { cwd: d });
    expect(size(child)).toBe(5120);
    ok(['write', '-n', child, '-o', String(MiB)], { input: filled(0x11, 2 * MiB) });
    ok(['write', '-n', child, '-o', String(60 * MiB)], { input: filled(0x22, 4096) });
    expect(size(child)).toBe(6308352);
    expect(ok(['read', '-n', child, '-b', '0'])).toBe('block: 0: offset: 7680\n');
    expect(ok(['read', '-n', child, '-e', '0', '-c', '204800'])).toBe('2048 4096\n122880 8\n');
    expect(vhdUtil(['read', '-n', child, '-B']).raw.toString('hex')).toBe('c0000002000000');
    expect(ok(['read', '-n', child, '-t', '2048'])).toBe(
      'logical sector 2048: block number: 0, sector offset: 2048, file offset: 1056768\n',
    );
    expect(ok(['read', '-n', child, '-i', '2048'])).toBe('block 0: sec: 2048: 1\n');
    // flag order does not change the line order
    expect(ok(['query', '-n', child, '-S', '-a', '-d', '-m', '-f', '-p', '-s', '-v'])).toBe(
      `100\n6308352\n${base}\nhidden: 0\nmarker: 0\nchain depth: 2\n3\n100\n`,
    );
    expect(ok(['query', '--debug', '-vsafp', '-n', child])).toBe(`100\n6308352\n${base}\nhidden: 0\n3\n`);
    expect(ok(['query', '-n', child, '-p', '-u'])).toBe('./base.vhd\n');
    // check -s: the stats lines quoted in the spec
    expect(ok(['check', '-n', 'base.vhd', '-s'], { cwd: d })).toBe('base.vhd: secs allocated: 0x5000 secs written: 0x3001 (60.00%)\n');
    expect(ok(['check', '-n', 'child.vhd', '-s'], { cwd: d })).toBe(
      'child.vhd: secs allocated: 0x3000 secs written: 0x1008 (33.40%) secs not in parent: 0x8 (0.19%) secs not in ancestors: 0x8 (0.19%)\n',
    );
  });

  it('hide, scan, check -p, coalesce', () => {
    const d = t.dir;
    const base = join(d, 'base.vhd');
    const child = join(d, 'child.vhd');

    ok(['set', '-n', base, '-f', 'hidden', '-v', '1']);
    expect(ok(['query', '-n', base, '-f'])).toBe('hidden: 1\n');
    const f0 = readAt(base, 0, 512);
    expect(f0[85]).toBe(1);
    expect(readAt(base, size(base) - 512, 512)).toEqual(f0);
    expect(f0.readUInt32BE(64)).toBe(checksum(f0, 64));
    expect(ok(['scan', '-f', '-m', `${d}/*.vhd`]).split('\n')).toEqual(
      expect.arrayContaining([
        'vhd=base.vhd capacity=104857600 size=10506752 hidden=1 parent=none',
        'vhd=child.vhd capacity=104857600 size=6308352 hidden=0 parent=base.vhd',
      ]),
    );
    expect(ok(['check', '-n', 'child.vhd', '-p'], { cwd: d })).toBe(`child.vhd is valid\n${base} is valid\n`);

    const before = vhdUtil(['read', '-n', child, '-r', '0', '-c', '204800']).raw;
    const childBytes = readAt(child, 0, size(child));
    const r = vhdUtil(['coalesce', '--debug', '-n', child]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('Coalesced 4104 sectors'); // no trailing newline
    expect(size(base)).toBe(12608000);
    expect(ok(['read', '-n', base, '-b', '30'])).toBe('block: 30: offset: 10509824\n');
    expect(ok(['query', '-n', base, '-f'])).toBe('hidden: 1\n');
    expect(readAt(child, 0, size(child)).equals(childBytes)).toBe(true); // child untouched
    expect(vhdUtil(['read', '-n', base, '-r', '0', '-c', '204800']).raw.equals(before)).toBe(true);
    expect(ok(['check', '-n', child, '-p'])).toBe(`${child} is valid\n${base} is valid\n`);
  });
});
