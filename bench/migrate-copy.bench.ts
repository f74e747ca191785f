// The migration copy engine against `cp --sparse=always` of the same data in
// the same run: a 4 GiB raw disk with half its 64 KiB blocks allocated (every
// other one), copied raw -> qcow2 into a pre-created empty target the way
// vdi-copy / vdi-pool-migrate do (qemu-img convert -n --target-is-zero), and
// qcow2 -> raw back. Goal: at least 0.8x cp's speed (time ratio cp/ours >= 0.8).
// Verification (qemu-img compare, run by every migration after the copy) is
// timed separately: it is a second read of both images that cp does not do.
// Run: npx tsx bench/migrate-copy.bench.ts
import { execa } from 'execa';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as qemuImg from '../src/sdk/tools/qemu-img.js';
import { convertIntoArgv } from '../src/toolstack/migrate/argv.js';
import { copyImage, runWithProgress } from '../src/toolstack/migrate/engine.js';
import { median, timed } from './stats.js';

const GiB = 1024 ** 3;
const SIZE = 4 * GiB;
const BLOCK = 64 * 1024;
const ROUNDS = 1;
const GOAL = 0.8;

function makeHalfAllocated(path: string): void {
  const fd = openSync(path, 'wx');
  try {
    const chunk = Buffer.alloc(BLOCK);
    for (let b = 0; b < SIZE / BLOCK; b += 2) {
      chunk.fill(b & 0xff).writeUInt32LE(b, 0);
      writeSync(fd, chunk, 0, BLOCK, b * BLOCK);
    }
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  // tmpfs by default: 4 GiB written several times would measure the disk (on a
  // loaded CI disk, minutes), not the copy engines; both run on the same storage.
  const tmp = process.env['SMAPI_BENCH_TMP'] ?? (existsSync('/dev/shm') ? '/dev/shm' : '/var/tmp');
  const dir = mkdtempSync(join(tmp, 'smapi-bench-migrate-'));
  try {
    const src = join(dir, 'src.raw');
    makeHalfAllocated(src);
    await execa('truncate', ['-s', String(SIZE), src]); // the last block is a hole: size the file to 4 GiB
    await execa('sync');
    const allocated = statSync(src).blocks * 512;
    const cp: number[] = [];
    const toQcow2: number[] = [];
    const toRaw: number[] = [];
    let verify = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const q = join(dir, `dst-${i}.qcow2`);
      const r = join(dir, `back-${i}.raw`);
      const c = join(dir, `cp-${i}.raw`);
      const runCp = async () => {
        cp.push(await timed(() => execa('cp', ['--sparse=always', src, c])));
        rmSync(c);
      };
      const runOurs = async () => {
        await qemuImg.create({ path: q, format: 'qcow2', sizeBytes: SIZE, clusterSize: BLOCK });
        toQcow2.push(await timed(() => runWithProgress(convertIntoArgv({ src, srcFormat: 'raw', dst: q, dstFormat: 'qcow2' }))));
        await execa('truncate', ['-s', String(SIZE), r]);
        toRaw.push(await timed(() => runWithProgress(convertIntoArgv({ src: q, srcFormat: 'qcow2', dst: r, dstFormat: 'raw' }))));
        rmSync(q);
        rmSync(r);
      };
      // Alternate which goes first, so neither always gets the warm cache.
      if (i % 2 === 0) {
        await runCp();
        await runOurs();
      } else {
        await runOurs();
        await runCp();
      }
      if (i === ROUNDS - 1) {
        // The whole engine once (copy + verification), for the record.
        const q2 = join(dir, 'engine.qcow2');
        await qemuImg.create({ path: q2, format: 'qcow2', sizeBytes: SIZE, clusterSize: BLOCK });
        verify = await timed(() => copyImage({ path: src, format: 'raw' }, { path: q2, format: 'qcow2' }, SIZE, { stagingPath: join(dir, 'staging') }));
        rmSync(q2);
      }
      for (const p of [q, r, c]) rmSync(p, { force: true });
    }
    const base = median(cp);
    const rows: [string, number][] = [
      ['raw -> qcow2 (engine copy step)', median(toQcow2)],
      ['qcow2 -> raw (engine copy step)', median(toRaw)],
    ];
    console.log(`migrate-copy (in ${tmp}): 4 GiB raw, ${(allocated / GiB).toFixed(2)} GiB allocated (every other 64 KiB block), ${ROUNDS} rounds, medians`);
    console.log(`  cp --sparse=always (baseline)        ${(base / 1000).toFixed(2)} s`);
    for (const [name, ms] of rows) {
      const ratio = base / ms;
      console.log(`  ${name.padEnd(36)} ${(ms / 1000).toFixed(2)} s  speed ${ratio.toFixed(2)}x cp  (goal >= ${GOAL}x: ${ratio >= GOAL ? 'met' : 'MISSED'})`);
    }
    console.log(`  raw -> qcow2 with verification       ${(verify / 1000).toFixed(2)} s  speed ${(base / verify).toFixed(2)}x cp  (copy + qemu-img compare; no goal)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
