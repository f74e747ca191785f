// Cold start of each driver executable answering sr_get_driver_info (what xapi
// does at every start-up and SM registration), as a ratio against `node -e 0`
// measured in the same run, interleaved so machine noise hits both alike.
// Goal: at most 1.5x. Exits non-zero only if a driver fails to answer.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodeMethodCallXapiStyle } from '../src/sdk/protocol/xmlrpc.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 21);
const GOAL = 1.5;
const DRIVERS = [
  ['FileSR', 'drivers/file/FileSR'],
  ['EXTSR', 'drivers/ext/EXTSR'],
  ['LVMSR', 'drivers/lvm/LVMSR'],
  ['NFSSR', 'drivers/nfs/NFSSR'],
] as const;

if (!existsSync(join(ROOT, 'dist/src/sdk/run.js'))) {
  spawnSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

const request = encodeMethodCallXapiStyle('sr_get_driver_info', [{ host_ref: 'OpaqueRef:NULL', command: 'sr_get_driver_info', args: [], device_config: {} }]);

// CPU time of reaped children (cutime + cstime in /proc/self/stat, clock ticks):
// unlike wall time it hardly moves when other work shares the machine.
function childCpuTicks(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[13]) + Number(fields[14]);
}
const cpu = new Map<string, number>();

function timeOnce(cmd: string, args: string[], label?: string): number {
  const c0 = childCpuTicks();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, SM_LOG_FILE: '/dev/null' } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (label) cpu.set(label, (cpu.get(label) ?? 0) + childCpuTicks() - c0);
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr}`);
  if (cmd !== process.execPath && !r.stdout.includes('<name>supported_image_formats</name>')) throw new Error(`${cmd} did not answer sr_get_driver_info:\n${r.stdout}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const baseline: number[] = [];
const samples = new Map<string, number[]>(DRIVERS.map(([n]) => [n, []]));
// Warm the page cache once, untimed.
timeOnce(process.execPath, ['-e', '0']);
for (const [, p] of DRIVERS) timeOnce(join(ROOT, p), [request]);
for (let i = 0; i < RUNS; i++) {
  baseline.push(timeOnce(process.execPath, ['-e', '0'], 'baseline'));
  for (const [n, p] of DRIVERS) samples.get(n)!.push(timeOnce(join(ROOT, p), [request], n));
}

const base = median(baseline);
console.log(`cold start, sr_get_driver_info, median of ${RUNS} runs (goal: <= ${GOAL}x node -e 0)`);
const baseCpu = cpu.get('baseline')!;
console.log(`  ${'command'.padEnd(20)} ${'wall median'.padStart(12)} ${'ratio'.padStart(7)}   ${'CPU ratio'.padStart(9)}`);
console.log(`  ${'node -e 0'.padEnd(20)} ${`${base.toFixed(1)} ms`.padStart(12)} ${'1.00x'.padStart(7)}   ${'1.00x'.padStart(9)}`);
let met = true;
for (const [n] of DRIVERS) {
  const m = median(samples.get(n)!);
  const ratio = m / base;
  met &&= ratio <= GOAL;
  const cpuRatio = baseCpu > 0 ? (cpu.get(n)! / baseCpu).toFixed(2) + 'x' : 'n/a';
  console.log(`  ${n.padEnd(20)} ${`${m.toFixed(1)} ms`.padStart(12)} ${`${ratio.toFixed(2)}x`.padStart(7)}   ${cpuRatio.padStart(9)}  ${ratio <= GOAL ? 'ok' : 'MISSED'}`);
}
console.log('  (CPU ratio: user+system time of the children, summed over all runs; less sensitive to other load than wall time)');
console.log(met ? `goal met (<= ${GOAL}x)` : `goal missed (> ${GOAL}x for at least one driver)`);
