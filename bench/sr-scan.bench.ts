// sr_scan of a file SR holding 1000 VDIs (500 two-deep chains: 250 VHD,
// 200 qcow2, 50 raw bases with qcow2 leaves; every base hidden), against a
// bare `vhd-util scan -f -c -m <sr>/*.vhd` of the same directory in the same run.
// Figures (median of ROUNDS), wall time and CPU time (user+sys of this process
// and its children: load from other work on the machine inflates wall time, not CPU):
//   * core scan: readInventory (all headers, all formats) in-process;
//   * driver sr_scan: what one sr_scan costs a running toolstack, as xapi runs it:
//     one FileSR process (its start-up, the header scan, the reconciliation against
//     the XenAPI endpoint) with the toolstack library held open in this process,
//     steady state (the first scan introduced all records). This is the goal figure;
//   * sr_scan via smctl: the same plus smctl's own start-up (a CLI process per
//     command, which xapi, a daemon, does not pay);
//   * what any driver must pay, to show how far below the driver call the goal
//     lies: Node's start-up alone; start-up plus loading zod, which validates every
//     call at the edge; and the floor (bench/scan-floor.mjs), one process that only
//     reads the headers and fetches the SR's VDI records the driver's way, as every
//     sr_scan must;
// each as a ratio to the bare vhd-util scan. Goal: driver sr_scan ≤ 1.5×.
// Run: npx tsx bench/sr-scan.bench.ts   (needs dist/ built: npx tsc -p tsconfig.build.json)
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { vhdUtilPath } from '../src/sdk/env.js';
import { readInventory } from '../src/sdk/file-sr/inventory.js';
import { opsFor } from '../src/sdk/formats/index.js';
import { runTool } from '../src/sdk/tools/run.js';
import { createVhd, snapshotVhd } from '../src/sdk/vhd/create.js';
import { setHidden } from '../src/sdk/vhd/ops.js';
import { srScan, Toolstack, XenApiEndpoint } from '../src/toolstack/index.js';
import { benchEnv, median, timed } from './stats.js';

const ROUNDS = 5;
const GOAL = 1.5;
const ROOT = resolve(import.meta.dirname, '..');
const MiB = 1024 * 1024;


/** CPU time (user+sys, ms) of this process plus the children it has waited for. */
function cpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const u = process.cpuUsage();
  // fields after the command name start at field 3; cutime is field 16, cstime 17 (clock ticks of 10 ms)
  return (u.user + u.system) / 1000 + (Number(rest[13]) + Number(rest[14])) * 10;
}

/** Wall and CPU time of one awaited call. */
async function measured(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = cpuMs();
  const wall = await timed(fn);
  return { wall, cpu: cpuMs() - c0 };
}

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['SMAPI_BENCH_TMP'] ?? '/var/tmp', 'smapi-bench-scan-'));
  const location = join(dir, 'sr');
  const env = benchEnv(dir);
  delete env['SM_FIST'];
  const smctl = async (...args: string[]) => (await execa(process.execPath, [join(ROOT, 'bin', 'smctl'), ...args], { env, extendEnv: false })).stdout.trim();
  try {
    const sr = await smctl('sr-create', 'type=file', `device-config:location=${location}`, 'name-label=bench');
    // Fixture: VHDs written in-process by our VHD library (the bench measures scanning, not creating).
    const t0 = performance.now();
    const p = (u: string, ext: string) => join(location, `${u}.${ext}`);
    for (let i = 0; i < 250; i++) {
      const base = randomUUID();
      createVhd(p(base, 'vhd'), 8);
      snapshotVhd(p(randomUUID(), 'vhd'), p(base, 'vhd'));
      setHidden(p(base, 'vhd'), 1);
    }
    const qTemplate = join(dir, 'template.qcow2');
    await opsFor('qcow2').create(qTemplate, 8 * MiB);
    const rTemplate = join(dir, 'template.raw');
    writeFileSync(rTemplate, Buffer.alloc(0));
    const chains: { base: string; ext: 'qcow2' | 'raw' }[] = [];
    for (let i = 0; i < 200; i++) chains.push({ base: randomUUID(), ext: 'qcow2' });
    for (let i = 0; i < 50; i++) chains.push({ base: randomUUID(), ext: 'raw' });
    for (const c of chains) {
      if (c.ext === 'qcow2') copyFileSync(qTemplate, p(c.base, 'qcow2'));
      else {
        writeFileSync(p(c.base, 'raw'), Buffer.alloc(0));
        await opsFor('raw').resize(p(c.base, 'raw'), 8 * MiB);
      }
    }
    await pool(chains, 4, async (c) => {
      await opsFor('qcow2').snapshot({ path: p(c.base, c.ext), format: c.ext }, p(randomUUID(), 'qcow2'));
      await opsFor(c.ext).setHidden(p(c.base, c.ext), true);
    });
    const made = (await readInventory(location)).vdis.size;
    if (made !== 1000) throw new Error(`fixture has ${made} images, expected 1000`);
    console.log(`fixture: 1000 images (500 chains) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const first = await timed(() => smctl('sr-scan', `uuid=${sr}`));
    const srDir = join(env['SM_SR_MOUNT_ROOT']!, sr);

    // The toolstack library in this process, as xapi's daemon: the driver it runs
    // gets this environment (runner.ts passes process.env on).
    Object.assign(process.env, env);
    const ts = Toolstack.open({ dbPath: env['SMCTL_DB']! });
    const bare: { wall: number; cpu: number }[] = [];
    const core: { wall: number; cpu: number }[] = [];
    const driver: { wall: number; cpu: number }[] = [];
    const viaSmctl: { wall: number; cpu: number }[] = [];
    const floor: { wall: number; cpu: number }[] = [];
    const nodeStart: { wall: number; cpu: number }[] = [];
    const withZod: { wall: number; cpu: number }[] = [];
    const zodEntry = import.meta.resolve('zod');
    const endpoint = await XenApiEndpoint.start(ts.db);
    const floorArgv = [process.execPath, join(ROOT, 'bench', 'scan-floor.mjs'), srDir, endpoint.newSession(), ts.srByUuid(sr).ref];
    const runFloor = () => runTool(floorArgv, { env: { SM_XAPI_URL: endpoint.url } });
    try {
      // The floor must do the whole of its work, or its figure means nothing.
      const floorSaid = (await runFloor()).stdout.trim();
      if (floorSaid !== '1000 images, 1000 records') throw new Error(`scan-floor.mjs: expected 1000 images and 1000 records, got: ${floorSaid}`);
      for (let r = 0; r < ROUNDS; r++) {
        bare.push(await measured(() => runTool([vhdUtilPath(), 'scan', '-f', '-c', '-m', join(srDir, '*.vhd')])));
        core.push(await measured(() => readInventory(srDir)));
        driver.push(await measured(() => srScan(ts, sr)));
        viaSmctl.push(await measured(() => smctl('sr-scan', `uuid=${sr}`)));
        nodeStart.push(await measured(() => runTool([process.execPath, '-e', '0'])));
        withZod.push(await measured(() => runTool([process.execPath, '-e', 'import(process.argv[1])', zodEntry])));
        floor.push(await measured(runFloor));
      }
    } finally {
      await endpoint.close();
      ts.close();
    }
    const records = Number(await smctl('vdi-list', `sr-uuid=${sr}`, '--minimal').then((o) => o.split(',').filter(Boolean).length, () => NaN));
    const last = readFileSync(env['SM_LOG_FILE']!, 'utf8').split('\n').filter((l) => l.includes('sr_scan: ')).at(-1) ?? '';
    console.log(`last scan: ${last.replace(/^.*sr_scan: /, '')}`);
    const b = median(bare.map((x) => x.wall));
    const bc = median(bare.map((x) => x.cpu));
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
    const row = (label: string, xs: { wall: number; cpu: number }[], goal: boolean) => {
      const w = median(xs.map((x) => x.wall));
      const c = median(xs.map((x) => x.cpu));
      const verdict = goal ? `  goal <= ${GOAL}x: ${w / b <= GOAL ? 'MET' : 'MISSED'} (wall)` : '';
      console.log(`${label} ${fmt(w)} wall ${(w / b).toFixed(2)}x | ${fmt(c)} CPU ${(c / bc).toFixed(2)}x${verdict}`);
    };
    console.log(`load average: ${readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')}`);
    console.log(`records in the DB after scan: ${Number.isNaN(records) ? 'n/a' : records} (500 leaves + 500 hidden bases with children)`);
    console.log(`first sr_scan via smctl (introduces every record): ${fmt(first)}`);
    console.log(`bare vhd-util scan (500 VHDs):                 ${fmt(b)} wall 1.00x | ${fmt(bc)} CPU 1.00x  (baseline)`);
    row('core scan, in-process (1000 images):          ', core, false);
    row('driver sr_scan, one driver call (steady state):', driver, true);
    row('sr_scan via smctl (+ CLI start-up):            ', viaSmctl, false);
    row('node start-up alone (node -e 0):               ', nodeStart, false);
    row('node start-up + import zod (edge validation):  ', withZod, false);
    row('floor: start-up + header read + record fetch:  ', floor, false);
  } finally {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
    for (const m of mounts) await execa('umount', [m], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

mkdirSync('/var/tmp', { recursive: true });
await main();
