// Damaged and hostile inputs: `check` names the problem (exit 22); every other
// command refuses with an error and leaves the file byte-for-byte unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { closeSync, copyFileSync, openSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { MiB, filled, ok, sha, size, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let pristine: string;
beforeAll(() => {
  t = tempDir('bad');
  pristine = join(t.dir, 'pristine.vhd');
  ok(['create', '-n', pristine, '-s', '20']);
  ok(['write', '-n', pristine, '-o', '0'], { input: filled(0x5a, 3 * MiB) });
});
afterAll(() => t.cleanup());

function patch(path: string, pos: number, bytes: Buffer) {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, pos);
  closeSync(fd);
}

function variant(name: string, damage: (p: string) => void): string {
  const p = join(t.dir, name);
  copyFileSync(pristine, p);
  damage(p);
  return p;
}

/** Mutating commands that must refuse a damaged file without touching it. */
function expectRefusedUnchanged(p: string) {
  const before = sha(p);
  const attempts: string[][] = [
    ['set', '-n', p, '-f', 'hidden', '-v', '1'],
    ['write', '-n', p, '-o', '0'],
    ['resize', '-n', p, '-s', '100', '-j', `${p}.journal`],
    ['modify', '-n', p, '-z'],
  ];
  for (const a of attempts) {
    const r = vhdUtil(a, { input: filled(1, 4096) });
    expect(r.status, `${a[0]} should fail`).not.toBe(0);
    expect(r.stdout.length, `${a[0]} should say why`).toBeGreaterThan(0);
    expect(sha(p), `${a[0]} changed the file`).toBe(before);
  }
}

describe('damaged files', () => {
  it('truncated file', () => {
    const p = variant('trunc.vhd', (x) => truncateSync(x, size(x) - 1024 * 1024));
    const r = vhdUtil(['check', '-n', p]);
    expect(r.status).toBe(22);
    expect(r.stdout.split('\n')[0]).toBe('primary footer invalid: invalid cookie');
    expect(r.stdout).toContain(`${p} appears invalid; dumping metadata`);
    // with -i the primary footer is forgiven but the BAT entry past the end is not
    const ri = vhdUtil(['check', '-i', '-n', p]);
    expect(ri.status).toBe(22);
    expect(ri.stdout.split('\n')[0]).toMatch(/^invalid BAT: BAT entry 1 \(sector \d+\) points past the end of the file$/);
    expectRefusedUnchanged(p);
  });

  it('bad footer checksum', () => {
    const p = variant('cksum.vhd', (x) => patch(x, size(x) - 512 + 64, Buffer.from([0, 0, 0, 1])));
    const r = vhdUtil(['check', '-n', p]);
    expect(r.status).toBe(22);
    expect(r.stdout.split('\n')[0]).toBe('primary footer invalid: invalid checksum');
    // The writers open it by the footer copy at 0, as libvhd does without VHD_OPEN_STRICT,
    // and write both footers again: the damage is gone.
    expect(vhdUtil(['set', '-n', p, '-f', 'hidden', '-v', '1']).status).toBe(0);
    expect(vhdUtil(['check', '-n', p]).stdout).toBe(`${p} is valid\n`);
    expect(vhdUtil(['query', '-n', p, '-f']).stdout).toBe('hidden: 1\n');
  });

  it('BAT entry pointing past the end', () => {
    const p = variant('batpast.vhd', (x) => {
      const e = Buffer.alloc(4);
      e.writeUInt32BE(0x00100000);
      patch(x, 1536 + 4, e);
    });
    const r = vhdUtil(['check', '-n', p]);
    expect(r.status).toBe(22);
    expect(r.stdout.split('\n')[0]).toBe('invalid BAT: BAT entry 1 (sector 1048576) points past the end of the file');
    const q = vhdUtil(['query', '-n', p, '-s']);
    expect(q.status).toBe(22);
    expect(vhdUtil(['read', '-n', p, '-r', '0', '-c', '8']).status).toBe(22);
    expectRefusedUnchanged(p);
  });

  it('parent missing', () => {
    const base = join(t.dir, 'gone-base.vhd');
    const child = join(t.dir, 'gone-child.vhd');
    ok(['create', '-n', base, '-s', '20']);
    ok(['snapshot', '-n', child, '-p', base]);
    renameSync(base, `${base}.moved`);
    const r = vhdUtil(['check', '-n', child]);
    expect(r.status).toBe(22);
    expect(r.stdout.split('\n')[0]).toBe('error finding parent gone-base.vhd: parent missing');
    const q = vhdUtil(['query', '-n', child, '-p', '-d']);
    expect(q.status).toBe(2);
    expect(q.stdout).toBe('query failed\nerror checking chain depth: -2\n');
    const before = sha(child);
    const c = vhdUtil(['coalesce', '-n', child]);
    expect(c.status).toBe(2);
    expect(c.stdout).toBe(`error finding ${child} parent: -2\nerror coalescing: -2\n`);
    expect(vhdUtil(['write', '-n', child, '-o', '0'], { input: filled(1, 512) }).status).toBe(2);
    expect(sha(child)).toBe(before);
  });

  it('parent loop', () => {
    const a = join(t.dir, 'loop-a.vhd');
    const b = join(t.dir, 'loop-b.vhd');
    const base = join(t.dir, 'loop-base.vhd');
    ok(['create', '-n', base, '-s', '20']);
    ok(['snapshot', '-n', a, '-p', base]);
    ok(['snapshot', '-n', b, '-p', a, '-e']);
    ok(['modify', '-n', a, '-p', b]); // a -> b -> a
    const r = vhdUtil(['check', '-n', a, '-p']);
    expect(r.status).toBe(22);
    expect(r.stdout).toContain(`parent loop: ${a} is its own ancestor`);
    const q = vhdUtil(['query', '-n', a, '-d']);
    expect(q.status).toBe(40);
    expect(q.stdout).toBe('error checking chain depth: -40\n');
    const before = sha(a);
    const w = vhdUtil(['write', '-n', a, '-o', '0'], { input: filled(1, 512) });
    expect(w.status).toBe(40);
    expect(w.stdout).toMatch(/parent loop/);
    expect(vhdUtil(['read', '-n', a, '-r', '0', '-c', '1']).status).toBe(40);
    expect(sha(a)).toBe(before);
  });

  it('a file that is not a VHD', () => {
    const j = join(t.dir, 'junk.bin');
    writeFileSync(j, Buffer.alloc(64 * 1024, 0x42));
    const r = vhdUtil(['check', '-n', j]);
    expect(r.status).toBe(22);
    expect(r.stdout).toMatch(
      new RegExp(`^primary footer invalid: invalid cookie\\n${j.replace(/[.]/g, '\\.')} appears invalid; dumping metadata\\nFailed to open ${j.replace(/[.]/g, '\\.')}: -22\\n\\n`),
    );
    const before = sha(j);
    for (const a of [
      ['set', '-n', j, '-f', 'hidden', '-v', '1'],
      ['coalesce', '-n', j],
      ['snapshot', '-n', join(t.dir, 'jc.vhd'), '-p', j],
      ['resize', '-n', j, '-s', '10', '-j', `${j}.jrnl`],
      ['repair', '-n', j],
      ['scan', '-f', j],
    ]) {
      expect(vhdUtil(a).status, a.join(' ')).toBe(22);
    }
    expect(sha(j)).toBe(before);
  });
});
