// Memory stays flat as disk size grows: peak RSS (GNU time's %M) of the same
// command on a small and a large disk must be close. The large cases stream
// 2 MiB at a time; only metadata (4 MiB of BAT for 2 TiB) scales with size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, VHD_UTIL, ok, tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('mem');
});
afterAll(() => t.cleanup());

/** Peak RSS in MiB of one vhd-util run, measured by /usr/bin/time (Debian package "time"). */
function peakRssMiB(args: string[]): number {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing: apt-get install time');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', VHD_UTIL, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`vhd-util ${args.join(' ')} failed: ${r.stderr}`);
  return Number(r.stderr.toString().trim().split('\n').pop()) / 1024;
}

describe('peak memory', () => {
  it('coalesce of 256 MiB uses about what coalesce of 4 MiB does', () => {
    const rss: number[] = [];
    for (const mib of [4, 256]) {
      const base = join(t.dir, `b${mib}.vhd`);
      const child = join(t.dir, `c${mib}.vhd`);
      ok(['create', '-n', base, '-s', '512']);
      ok(['snapshot', '-n', child, '-p', base]);
      const chunk = join(t.dir, `chunk${mib}.bin`);
      writeFileSync(chunk, Buffer.alloc(mib * MiB, 0x3c));
      ok(['write', '-n', child, '-o', '0', '-f', chunk]);
      rss.push(peakRssMiB(['coalesce', '-n', child]));
      expect(statSync(base).size).toBeGreaterThan(mib * MiB);
    }
    expect(rss[1]! - rss[0]!).toBeLessThan(12);
  });

  it('export of a 2 TiB disk holds no more than a 100 MiB one plus its BAT', () => {
    const small = join(t.dir, 'small.vhd');
    const big = join(t.dir, 'big.vhd');
    ok(['create', '-n', small, '-s', '100']);
    ok(['create', '-n', big, '-s', '2097152']);
    for (const v of [small, big]) {
      ok(['write', '-n', v, '-o', String(50 * MiB)], { input: Buffer.alloc(3 * MiB, 1) });
    }
    const a = peakRssMiB(['export', '-n', small, '-o', join(t.dir, 'small.raw')]);
    const b = peakRssMiB(['export', '-n', big, '-o', join(t.dir, 'big.raw')]);
    expect(statSync(join(t.dir, 'big.raw')).size).toBe(2 * 1024 * 1024 * MiB);
    expect(statSync(join(t.dir, 'big.raw')).blocks * 512).toBeLessThan(16 * MiB); // sparse
    expect(b - a).toBeLessThan(16);
  });
});
