// Snapshot of a 2 TiB-virtual VHD and qcow2 through the format layer, against
// the bare tool call in the same run (`vhd-util snapshot`, `qemu-img create -b`).
// Figures: median wall time (ratio to bare), and tool processes per snapshot
// (goal: at most 3; the layer's checks are in-process header reads).
// Run: npx tsx bench/snapshot.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { vhdUtilPath } from '../src/sdk/env.js';
import { opsFor } from '../src/sdk/formats/index.js';
import * as qemuImg from '../src/sdk/tools/qemu-img.js';
import { recordToolCalls, runTool } from '../src/sdk/tools/run.js';
import * as vhdUtil from '../src/sdk/tools/vhd-util.js';
import { median, timed } from './stats.js';

const TiB = 1024 ** 4;
const ROUNDS = 12;
const GOAL_PROCESSES = 3;


async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['SMAPI_BENCH_TMP'] ?? '/var/tmp', 'smapi-bench-snap-'));
  try {
    // 2 TiB bases: VHD straight through vhd-util (sm's own limit is 2040 GiB, the tool has none), qcow2 through the layer.
    const vhdBase = join(dir, 'base.vhd');
    await vhdUtil.create({ path: vhdBase, sizeMiB: (2 * TiB) / (1024 * 1024) });
    const qBase = join(dir, 'base.qcow2');
    await opsFor('qcow2').create(qBase, 2 * TiB);

    const results: { name: string; ours: number[]; bare: number[]; procs: number[] }[] = [];
    for (const format of ['vhd', 'qcow2'] as const) {
      const base = format === 'vhd' ? vhdBase : qBase;
      const r = { name: format, ours: [] as number[], bare: [] as number[], procs: [] as number[] };
      for (let i = 0; i < ROUNDS; i++) {
        // Alternate which goes first, so neither always gets the warm cache.
        const runOurs = async () => {
          const child = join(dir, `ours-${i}.${format}`);
          const rec = recordToolCalls();
          r.ours.push(await timed(() => opsFor(format).snapshot({ path: base, format }, child)));
          rec.stop();
          r.procs.push(rec.calls.length);
        };
        const runBare = async () => {
          const child = join(dir, `bare-${i}.${format}`);
          const argv =
            format === 'vhd'
              ? [vhdUtilPath(), 'snapshot', '-n', child, '-p', base]
              : qemuImg.createArgv({ path: child, format: 'qcow2', backing: { path: relative(dir, base), format: 'qcow2' } });
          r.bare.push(await timed(() => runTool(argv)));
        };
        if (i % 2 === 0) {
          await runOurs();
          await runBare();
        } else {
          await runBare();
          await runOurs();
        }
      }
      results.push(r);
    }

    console.log(`snapshot of a 2 TiB-virtual image, ${ROUNDS} rounds each (vhd-util: ${vhdUtilPath()})`);
    for (const r of results) {
      const ours = median(r.ours);
      const bare = median(r.bare);
      const procs = Math.max(...r.procs);
      console.log(
        `  ${r.name.padEnd(5)} format layer ${ours.toFixed(1)} ms vs bare tool ${bare.toFixed(1)} ms: ratio ${(ours / bare).toFixed(2)}x; ` +
          `tool processes per snapshot: ${procs} (goal <= ${GOAL_PROCESSES}: ${procs <= GOAL_PROCESSES ? 'met' : 'MISSED'})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
