// `read -p` against blktap's verbatim dump of a snapshot child (observed output,
// kept in test/fixtures/vhd), with only the values that differ per run (times,
// UUIDs, checksums) masked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, filled, ok, tempDir, vhdUtil } from './helpers.js';

const BLKTAP_DUMP = join(import.meta.dirname, '../fixtures/vhd/read-p-snapshot-child.txt');

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('dump');
});
afterAll(() => t.cleanup());

/** Mask run-specific values: timestamps, UUIDs, footer/header checksums. */
function mask(s: string): string {
  return s
    .replace(/^(Timestamp|Parent timestamp)(\s+): .*$/gm, '$1$2: <time>')
    .replace(/^(UUID|Parent UUID)(\s+): [0-9a-f-]{36}$/gm, '$1$2: <uuid>')
    .replace(/^Checksum(\s+): 0x[0-9a-f]{8}\|0x[0-9a-f]{8} \(Good!\)$/gm, (line) =>
      line.includes('0xffffffff|0xffffffff') ? line : 'Checksum : <good>',
    );
}

function blktapDump(): string {
  return readFileSync(BLKTAP_DUMP, 'utf8');
}

describe('read -p', () => {
  it('prints the snapshot child exactly as blktap does', () => {
    const d = join(t.dir, 'vt');
    mkdirSync(d);
    ok(['create', '-n', join(d, 'base.vhd'), '-s', '100']);
    ok(['snapshot', '-n', join(d, 'child.vhd'), '-p', join(d, 'base.vhd')]);
    const ours = ok(['read', '--debug', '-p', '-n', join(d, 'child.vhd')]);
    expect(mask(ours)).toBe(mask(blktapDump()));
    // the checksums it prints are the real ones (stored|computed agree)
    for (const m of ours.matchAll(/Checksum\s+: (0x[0-9a-f]{8})\|(0x[0-9a-f]{8}) \((\w+)!\)/g)) {
      expect([m[1], m[3]]).toEqual([m[2], 'Good']);
    }
  });

  it('shows a base disk as Dynamic with an empty parent and no locators; sm’s regex matches', () => {
    const base = join(t.dir, 'b.vhd');
    ok(['create', '-n', base, '-s', '100']);
    ok(['write', '-n', base, '-o', '0'], { input: filled(1, 2 * MiB) });
    // dates are ctime(3) in local time: pin the zone
    const out = ok(['read', '-p', '-n', base], { env: { ...process.env, TZ: 'UTC' } });
    expect(out).toMatch(/Disk type\s+: (\S+) hard disk/);
    expect(/Disk type\s+: (\S+) hard disk/.exec(out)![1]).toBe('Dynamic');
    expect(out).toContain('Parent name         : \n');
    expect(out).toContain('Parent UUID         : 00000000-0000-0000-0000-000000000000\n');
    expect(out).toContain('Parent timestamp    : Sat Jan  1 00:00:00 2000\n');
    expect(out).not.toContain('VHD Parent Locators');
    expect(out).toContain('Checksum            : 0xffffff7f|0xffffff7f (Good!)\n'); // batmap byte 0x80: block 0 full
    expect(vhdUtil(['read', '-p', '-n', join(t.dir, 'none.vhd')]).status).toBe(2);
  });
});
