// resize (-j journaled, -f fast) and revert from the journal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, filled, ok, readAt, sha, shaOf, size, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('resize');
});
afterAll(() => t.cleanup());

function content(vhd: string, mib: number): string {
  return shaOf(vhdUtil(['read', '-n', vhd, '-r', '0', '-c', String((mib * MiB) / 512)]).raw);
}

function makeBase(name: string): string {
  const f = join(t.dir, name);
  ok(['create', '-n', f, '-s', '100']);
  ok(['write', '-n', f, '-o', '0'], { input: filled(0xaa, 5 * MiB) });
  ok(['write', '-n', f, '-o', String(20 * MiB)], { input: filled(0xbb, MiB) });
  return f;
}

describe('resize -j', () => {
  it('grows within the BAT without changing the file size; journal removed', () => {
    const f = makeBase('g1.vhd');
    const before = content(f, 100);
    const s = size(f);
    const j = join(t.dir, 'g1.journal');
    ok(['resize', '-n', f, '-s', '100', '-j', j]);
    ok(['resize', '--debug', '-n', f, '-s', '100', '-j', j]);
    expect(existsSync(j)).toBe(false);
    expect(size(f)).toBe(s);
    expect(content(f, 100)).toBe(before);
  });

  it('grows past the BAT, moving the first blocks to the end (orig_size unchanged)', () => {
    const f = makeBase('g2.vhd');
    const before = content(f, 100);
    ok(['resize', '-n', f, '-s', '100000', '-j', join(t.dir, 'g2.journal')]);
    expect(ok(['query', '-n', f, '-v', '-S'])).toBe('100000\n100000\n');
    expect(ok(['read', '-n', f, '-b', '0'])).not.toBe('block: 0: offset: 3584\n');
    const dump = ok(['read', '-n', f, '-p']);
    expect(dump).toContain('Max BAT size        : 50000\n');
    expect(dump).toContain('Batmap offset       : 202240\n');
    expect(dump).toContain('Batmap size (secs)  : 13\n');
    expect(dump).toContain('Original disk size  : 100 MB (104857600 Bytes)\n');
    expect(content(f, 100)).toBe(before);
    expect(ok(['check', '-n', f])).toBe(`${f} is valid\n`);
    // the rest of the new space reads as zeros and is writable
    ok(['write', '-n', f, '-o', String(99999 * MiB)], { input: filled(0x77, 4096) });
    expect(vhdUtil(['read', '-n', f, '-R', String(99999 * MiB), '-c', '4']).raw.toString('hex')).toBe('77777777');
  });

  it('a differencing disk keeps its locators when its BAT grows', () => {
    const base = makeBase('g3b.vhd');
    const child = join(t.dir, 'g3c.vhd');
    ok(['snapshot', '-n', child, '-p', base]);
    ok(['write', '-n', child, '-o', String(MiB)], { input: filled(0x11, 2 * MiB) });
    const before = content(child, 100);
    ok(['resize', '-n', child, '-s', '50000', '-j', join(t.dir, 'g3.journal')]);
    expect(ok(['query', '-n', child, '-p', '-v'])).toBe(`50000\n${base}\n`);
    expect(content(child, 100)).toBe(before);
    expect(ok(['check', '-n', child, '-p'])).toBe(`${child} is valid\n${base} is valid\n`);
  });

  it('refuses to shrink a dynamic disk (ENOSYS)', () => {
    const f = makeBase('s.vhd');
    const before = sha(f);
    const r = vhdUtil(['resize', '-n', f, '-s', '50', '-j', join(t.dir, 's.journal')]);
    expect(r.status).toBe(38);
    expect(r.stdout).toBe('dynamic shrink not fully implemented\nresize failed: -38\n');
    expect(sha(f)).toBe(before);
    expect(existsSync(join(t.dir, 's.journal'))).toBe(false);
  });

  it('a resize that fails after moving metadata is reverted byte-identically', () => {
    const f = makeBase('r.vhd');
    const j = join(t.dir, 'r.journal');
    const before = sha(f);
    const r = vhdUtil(['resize', '-n', f, '-s', '100000', '-j', j], {
      env: { ...process.env, VHD_UTIL_TEST_FAIL_RESIZE_METADATA_MOVED: '1' },
    });
    expect(r.status).toBe(22);
    expect(r.stdout).toContain('Failing at METADATA_MOVED');
    expect(existsSync(j)).toBe(true);
    expect(sha(f)).not.toBe(before);
    ok(['revert', '-n', f, '-j', j]);
    expect(sha(f)).toBe(before);
    expect(existsSync(j)).toBe(false);
    const m = vhdUtil(['revert', '-n', f, '-j', j]);
    expect(m.status).toBe(2);
    expect(m.stdout).toBe('opening journal failed: -2\n');
  });

  it('fixed disks grow and shrink', () => {
    const f = join(t.dir, 'fixed.vhd');
    ok(['create', '-n', f, '-s', '10', '-r']);
    expect(size(f)).toBe(10 * MiB + 512);
    expect(ok(['query', '-n', f, '-v', '-s'])).toBe(`10\n${10 * MiB + 512}\n`);
    ok(['resize', '-n', f, '-s', '20', '-j', join(t.dir, 'f.journal')]);
    expect(size(f)).toBe(20 * MiB + 512);
    ok(['resize', '-n', f, '-s', '4', '-j', join(t.dir, 'f.journal')]);
    expect(ok(['query', '-n', f, '-v'])).toBe('4\n');
    expect(readAt(f, 4 * MiB, 8).toString('latin1')).toBe('conectix');
    expect(vhdUtil(['check', '-n', f]).stdout).toBe(''); // fixed disks print nothing
  });
});

describe('resize -f', () => {
  it('grows within the -S preallocation only, following spec §6 step 9', () => {
    const f = join(t.dir, 'pre.vhd');
    ok(['create', '-n', f, '-s', '100', '-S', '1024']);
    expect(ok(['query', '-n', f, '-S'])).toBe('1024\n');
    const s = size(f);
    ok(['resize', '-n', f, '-s', '500', '-f']);
    expect(ok(['query', '-n', f, '-v'])).toBe('500\n');
    expect(size(f)).toBe(s);
    expect(vhdUtil(['resize', '-n', f, '-s', '2000', '-f']).status).toBe(22);
    const shrink = vhdUtil(['resize', '-n', f, '-s', '400', '-f']);
    expect(shrink.status).toBe(22);
    expect(shrink.stdout).toBe(`${f}: size (419430400) < curr size (524288000)\n`);
    ok(['resize', '-n', f, '-s', '501', '-f']);
    expect(ok(['query', '-n', f, '-v'])).toBe('502\n');
  });
  it('needs exactly one of -j / -f', () => {
    expect(vhdUtil(['resize', '-n', 'x.vhd', '-s', '1']).status).toBe(22);
    expect(vhdUtil(['resize', '-n', 'x.vhd', '-s', '1', '-f', '-j', 'j']).status).toBe(22);
  });
});
