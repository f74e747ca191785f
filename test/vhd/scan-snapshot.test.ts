// scan output modes; snapshot's parent selection (-e, -l, -m); modify, set marker, repair.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, filled, ok, readAt, size, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let d: string;
beforeAll(() => {
  t = tempDir('scan');
  d = join(t.dir, 'srv');
  mkdirSync(d);
  ok(['create', '-n', join(d, 'base.vhd'), '-s', '100']);
  ok(['write', '-n', join(d, 'base.vhd'), '-o', '0'], { input: filled(0xaa, 5 * MiB) });
  ok(['snapshot', '-n', join(d, 'child.vhd'), '-p', join(d, 'base.vhd')]);
  ok(['write', '-n', join(d, 'child.vhd'), '-o', String(MiB)], { input: filled(0x11, 2 * MiB) });
});
afterAll(() => t.cleanup());

const sz = (n: string) => statSync(join(d, n)).size;

describe('scan', () => {
  it('-f: basenames, header parent name, stat size', () => {
    const lines = ok(['scan', '--debug', '-f', '-c', '-m', `${d}/*.vhd`]).trim().split('\n').sort();
    expect(lines).toEqual([
      `vhd=base.vhd capacity=104857600 size=${sz('base.vhd')} hidden=0 parent=none`,
      `vhd=child.vhd capacity=104857600 size=${sz('child.vhd')} hidden=0 parent=base.vhd`,
    ]);
  });
  it('without -f and with -v: full paths, resolved parent, sorted', () => {
    expect(ok(['scan', '-v', '-m', `${d}/*.vhd`])).toBe(
      `vhd=${d}/base.vhd capacity=104857600 size=${sz('base.vhd')} hidden=0 parent=none\n` +
        `vhd=${d}/child.vhd capacity=104857600 size=${sz('child.vhd')} hidden=0 parent=${d}/base.vhd\n`,
    );
  });
  it('-M adds marker and keyhash', () => {
    ok(['set', '-n', join(d, 'child.vhd'), '-f', 'marker', '-v', '7']);
    expect(ok(['query', '-n', join(d, 'child.vhd'), '-m'])).toBe('marker: 7\n');
    expect(ok(['scan', '-f', '-M', join(d, 'child.vhd')])).toBe(
      `vhd=child.vhd capacity=104857600 size=${sz('child.vhd')} hidden=0 marker=7 keyhash= parent=base.vhd\n`,
    );
    ok(['set', '-n', join(d, 'child.vhd'), '-f', 'marker', '-v', '0']);
  });
  it('-a adds parents (relative to cwd in fast mode)', () => {
    expect(ok(['scan', '-f', '-a', 'child.vhd'], { cwd: d })).toBe(
      `vhd=child.vhd capacity=104857600 size=${sz('child.vhd')} hidden=0 parent=base.vhd\n` +
        `vhd=base.vhd capacity=104857600 size=${sz('base.vhd')} hidden=0 parent=none\n`,
    );
    const away = vhdUtil(['scan', '-f', '-a', join(d, 'child.vhd')], { cwd: '/' });
    expect(away.status).toBe(0);
    expect(away.stdout.split('\n')[1]).toBe("vhd=base.vhd scan-error=-2 error-message='failure scanning target'");
  });
  it('brace patterns; no match is silent; no targets is a usage error', () => {
    expect(ok(['scan', '-f', '-m', `${d}/{base,nothing}.vhd`]).split('\n')[0]).toMatch(/^vhd=base\.vhd /);
    const none = vhdUtil(['scan', '-f', '-m', `${d}/*.qcow2`]);
    expect([none.status, none.stdout]).toEqual([0, '']);
    expect(vhdUtil(['scan', '-f']).status).toBe(22);
  });
  it('errors: stop without -c, continue with -c', () => {
    const fixed = join(t.dir, 'fixed.vhd');
    ok(['create', '-n', fixed, '-s', '4', '-r']);
    const r = vhdUtil(['scan', '-f', fixed, join(d, 'base.vhd')]);
    expect(r.status).toBe(22);
    expect(r.stdout).toBe(`vhd=${fixed} scan-error=-22 error-message='opening file'\n`);
    const c = vhdUtil(['scan', '-f', '-c', fixed, join(d, 'base.vhd')]);
    expect(c.status).toBe(0);
    expect(c.stdout.split('\n')[1]).toMatch(/^vhd=base\.vhd capacity=104857600 /);
  });
  it('-p prints a tree', () => {
    const snap = join(d, 'snap1.vhd');
    ok(['snapshot', '-n', snap, '-p', join(d, 'child.vhd')]);
    ok(['set', '-n', join(d, 'base.vhd'), '-f', 'hidden', '-v', '1']);
    const out = ok(['scan', '-p', '-m', `${d}/*.vhd`]);
    expect(out).toBe(
      `vhd=base.vhd capacity=104857600 size=${sz('base.vhd')} hidden=1 parent=none\n` +
        `   vhd=child.vhd capacity=104857600 size=${sz('child.vhd')} hidden=0 parent=base.vhd\n` +
        `      vhd=snap1.vhd capacity=104857600 size=5120 hidden=0 parent=child.vhd\n`,
    );
    ok(['set', '-n', join(d, 'base.vhd'), '-f', 'hidden', '-v', '0']);
  });
});

describe('snapshot parent selection', () => {
  it('skips empty differencing parents unless -e (blktap quirk)', () => {
    const s1 = join(d, 'e1.vhd');
    const s2 = join(d, 'e2.vhd');
    const s3 = join(d, 'e3.vhd');
    ok(['snapshot', '-n', s1, '-p', join(d, 'child.vhd')]);
    ok(['snapshot', '-n', s2, '-p', s1]);
    expect(ok(['query', '-n', s2, '-p', '-d'])).toBe(`${d}/child.vhd\nchain depth: 3\n`);
    ok(['snapshot', '-n', s3, '-p', s1, '-e']);
    expect(ok(['query', '-n', s3, '-p', '-d'])).toBe(`${s1}\nchain depth: 4\n`);
  });
  it('-l limits the depth (exit 28, no file)', () => {
    const c = join(d, 'deep.vhd');
    const r = vhdUtil(['snapshot', '-n', c, '-p', join(d, 'child.vhd'), '-l', '2']);
    expect(r.status).toBe(28);
    expect(r.stdout).toBe('snapshot depth exceeded: current depth: 2, limit: 2\n');
    expect(existsSync(c)).toBe(false);
    ok(['snapshot', '-n', c, '-p', join(d, 'child.vhd'), '-l', '3']);
  });
  it('-m: raw parent, zero parent uuid, raw size; scan -a shows it hidden', () => {
    const raw = join(t.dir, 'disk.img');
    writeFileSync(raw, Buffer.alloc(6 * MiB, 3));
    const c = join(t.dir, 'onraw.vhd');
    ok(['snapshot', '-n', c, '-p', raw, '-m']);
    expect(ok(['query', '-n', c, '-v', '-p'])).toBe(`6\n${raw}\n`);
    expect(readAt(c, 512 + 40, 16).every((x) => x === 0)).toBe(true);
    expect(ok(['scan', '-a', c]).split('\n')[1]).toBe(`vhd=disk.img capacity=${6 * MiB} size=${6 * MiB} hidden=1 parent=none`);
    expect(vhdUtil(['read', '-n', c, '-r', '0', '-c', '1']).raw.equals(Buffer.alloc(512, 3))).toBe(true);
  });
  it('-S below the parent size is refused and leaves no file', () => {
    const c = join(d, 'smallS.vhd');
    expect(vhdUtil(['snapshot', '-n', c, '-p', join(d, 'base.vhd'), '-S', '50']).status).toBe(22);
    expect(existsSync(c)).toBe(false);
  });
});

describe('modify, set, repair', () => {
  it('modify -p re-points a child and rewrites its locators in place', () => {
    const other = join(t.dir, 'other.vhd');
    ok(['create', '-n', other, '-s', '100']);
    const c = join(t.dir, 'mc.vhd');
    ok(['snapshot', '-n', c, '-p', join(d, 'base.vhd')]);
    ok(['modify', '--debug', '-p', other, '-n', c]);
    expect(ok(['query', '-n', c, '-p', '-u'])).toBe('./other.vhd\n');
    expect(ok(['read', '-n', c, '-p'])).toContain('Parent name         : other.vhd\n');
    expect(ok(['check', '-n', c])).toBe(`${c} is valid\n`);
    const r = vhdUtil(['modify', '-p', c, '-n', other]);
    expect(r.status).toBe(22);
    expect(r.stdout).toBe(`failed to set parent to '${c}': -22\n`);
  });
  it('modify -s moves the footer; set -f hidden truncates back (blktap quirk)', () => {
    const f = join(t.dir, 'phys.vhd');
    ok(['create', '-n', f, '-s', '20']);
    ok(['write', '-n', f, '-o', '0'], { input: filled(1, MiB) });
    const phys = Number(ok(['query', '-n', f, '-s']));
    const bad = vhdUtil(['modify', '-n', f, '-s', '20000000']);
    expect(bad.status).toBe(22);
    expect(bad.stdout).toBe('failed to set physical size to 20000000: -22\n');
    ok(['modify', '-n', f, '-s', String(20 * MiB)]);
    expect(size(f)).toBe(20 * MiB);
    expect(readAt(f, 20 * MiB - 512, 8).toString()).toBe('conectix');
    expect(Number(ok(['query', '-n', f, '-s']))).toBe(phys);
    ok(['set', '-n', f, '-f', 'hidden', '-v', '1']);
    expect(size(f)).toBe(phys);
  });
  it('modify -z drops every block', () => {
    const f = join(t.dir, 'kill.vhd');
    ok(['create', '-n', f, '-s', '100']);
    ok(['write', '-n', f, '-o', '0'], { input: filled(9, 5 * MiB) });
    ok(['modify', '-n', f, '-z']);
    expect(size(f)).toBe(3584);
    expect(ok(['query', '-n', f, '-a'])).toBe('0\n');
    expect(ok(['check', '-n', f])).toBe(`${f} is valid\n`);
  });
  it('repair rewrites a zeroed primary footer from the copy', () => {
    const f = join(t.dir, 'rep.vhd');
    ok(['create', '-n', f, '-s', '20']);
    ok(['write', '-n', f, '-o', '0'], { input: filled(2, MiB) });
    const fd = openSync(f, 'r+');
    writeSync(fd, Buffer.alloc(512), 0, 512, size(f) - 512);
    closeSync(fd);
    expect(vhdUtil(['check', '-n', f]).status).toBe(22);
    ok(['repair', '-n', f]);
    expect(ok(['check', '-n', f])).toBe(`${f} is valid\n`);
  });
});
