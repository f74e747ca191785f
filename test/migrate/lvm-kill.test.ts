// A copy into an LVM SR killed half-way (SIGKILL of smctl while it writes the
// destination LV), on this host's metadata-only LVM (an attached LV is a loop
// device over its extents): the source stays intact by content and is left
// detached, no half-made VDI shows in the database or after `smctl sr-scan`,
// and after that scan the destination VG holds no LV of the copy and no
// activation of it is left.
//
// Unlike a file SR, the half-made LV is not hidden (the lvm driver never
// collects hidden leaves): the copy journal is what removes it, at the next
// smctl that touches the SRs (here sr-scan). Both a file source and an LVM
// source (attached read-only by the dead smctl) are covered.
import { execa, type ResultPromise } from 'execa';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sha256File } from '../../src/sdk/formats/content.js';
import { assertBuilt, SMCTL } from '../toolstack/helpers.js';
import { imagePath, vdiUuids } from './helpers.js';
import { lvmHost, lvmSha, type LvmHost } from './lvm-helpers.js';

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
const BLOCKS = SIZE / (2 * MiB);
// Kill once this many 2 MiB VHD blocks are in the destination (of BLOCKS).
const KILL_AT = 16;
const CASE_MS = 900_000;

let h: LvmHost;
let F: string;
let L: string;
let L2: string;

beforeAll(async () => {
  assertBuilt();
  h = await lvmHost([1536, 1536]);
  F = await h.newFileSr('file');
  L = await h.newLvmSr('lvm', 0);
  L2 = await h.newLvmSr('lvm2', 1);
}, CASE_MS);

afterAll(async () => {
  await h?.cleanupAll();
});

/** Every other MiB holds data (its index, then the byte i & 0xff): 512 MiB allocated in 1 GiB. */
function fillAlternateMiBs(path: string): void {
  const fd = openSync(path, 'r+');
  const buf = Buffer.alloc(MiB);
  try {
    for (let i = 0; i < SIZE / MiB; i += 2) {
      buf.fill(i & 0xff).writeUInt32LE(i, 0);
      writeSync(fd, buf, 0, MiB, i * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

/** Allocated BAT entries of the dynamic VHD at `path` (footer copy at 0, dynamic header, BAT), or -1 when unreadable yet. */
function vhdAllocatedBlocks(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return -1;
  }
  try {
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      return b.subarray(0, readSync(fd, b, 0, len, pos));
    };
    const footer = read(0, 512);
    if (footer.toString('latin1', 0, 8) !== 'conectix') return -1;
    const dyn = read(Number(footer.readBigUInt64BE(16)), 1024);
    if (dyn.toString('latin1', 0, 8) !== 'cxsparse') return -1;
    const entries = dyn.readUInt32BE(28);
    const bat = read(Number(dyn.readBigUInt64BE(16)), entries * 4);
    let n = 0;
    for (let i = 0; i + 4 <= bat.length; i += 4) if (bat.readUInt32BE(i) !== 0xffffffff) n++;
    return n;
  } finally {
    closeSync(fd);
  }
}

/** Where smctl keeps copy journals: next to its SR lock files, beside the database. */
const journals = (): string => join(`${h.env['SMCTL_DB']!}.locks`, 'copies');

/** The destination uuid of the copy in flight, from its journal (written before each step). */
function destInFlight(): { uuid: string; copying: boolean } | undefined {
  const dir = journals();
  for (const f of existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')) : []) {
    try {
      const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { items: { destUuid: string; staging?: string }[] };
      const it = j.items.at(-1);
      if (it && it.destUuid !== '') return { uuid: it.destUuid, copying: it.staging !== undefined };
    } catch {
      /* being renamed into place */
    }
  }
  return undefined;
}

/** Loop devices over one of our PVs other than the PVs themselves: activations (no device-mapper here). */
async function activations(): Promise<string[]> {
  const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { reject: false });
  const pvs = h.loops.map((l) => l.device);
  return String(stdout)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && pvs.includes(f[1]!))
    .map((f) => f[0]!);
}

/** Live processes whose command line holds every one of `words` (pid -> argv). */
function processesWith(words: string[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const d of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (words.every((w) => argv.some((a) => a.includes(w)))) out.set(Number(d), argv);
  }
  return out;
}

/** Starts `vdi-copy <src> -> <destSr> as vhd` and SIGKILLs smctl once KILL_AT blocks are in the destination LV. */
async function killMidCopy(src: string, destSr: string): Promise<{ dest: string }> {
  const child: ResultPromise = execa(process.execPath, [SMCTL, 'vdi-copy', `uuid=${src}`, `sr-uuid=${destSr}`, 'dest-img-format=vhd'], {
    env: { ...process.env, ...h.env },
    reject: false,
  });
  let dest = '';
  let seen = -1;
  const trace: string[] = [];
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const d = destInFlight();
    if (d?.copying) {
      dest = d.uuid;
      seen = vhdAllocatedBlocks(`/dev/VG_XenStorage-${destSr}/VHD-${d.uuid}`);
      if (trace.at(-1) !== String(seen)) trace.push(String(seen));
      if (seen >= KILL_AT) {
        child.kill('SIGKILL');
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (child.exitCode === null && !child.killed) child.kill('SIGKILL'); // never leave it writing
  const r = await child;
  expect(seen, `smctl was not killed mid-copy (destination blocks seen: ${trace.join(' ')}); stderr: ${String(r.stderr)}`).toBeGreaterThanOrEqual(KILL_AT);
  expect(seen, 'the copy had already written every block').toBeLessThan(BLOCKS);
  expect(r.signal).toBe('SIGKILL');
  return { dest };
}

it('file -> lvm (vhd) killed mid-copy: source intact, no VDI, no LV and no activation left after sr-scan', async () => {
  const src = await h.ok(['vdi-create', `sr-uuid=${F}`, 'name-label=big', `virtual-size=${SIZE}`, 'sm-config:image-format=raw']);
  const path = imagePath(h, F, src);
  fillAlternateMiBs(path);
  const srcSha = sha256File(path);
  expect(await h.lvNames(L)).toEqual(['MGT']);

  const { dest } = await killMidCopy(src, L);
  // Right after the kill: the half-made LV is on the PV (the journal removes it), but no VDI record shows.
  expect(await h.lvNames(L)).toEqual(['MGT', `VHD-${dest}`]);
  expect(vdiUuids(h, L)).toEqual([]);
  expect(sha256File(path)).toBe(srcSha);

  await h.ok(['sr-scan', `uuid=${L}`]);
  expect(vdiUuids(h, L)).toEqual([]);
  expect(await h.lvNames(L)).toEqual(['MGT']);
  expect(existsSync(`/dev/VG_XenStorage-${L}/VHD-${dest}`)).toBe(false);
  expect(await activations()).toEqual([]);
  expect(readdirSync(journals()), 'journal left').toEqual([]);
  expect(existsSync(join(h.env['SM_RUN_DIR']!, 'file-sr', F, 'attached', src)), 'source left attached').toBe(false);
  expect(sha256File(path)).toBe(srcSha);
  // The source is usable: not held attached by the dead copy.
  await h.ok(['vdi-destroy', `uuid=${src}`]);
}, CASE_MS);

it('lvm -> lvm (raw LV -> vhd) killed mid-copy: source LV intact and detached, nothing left on the destination VG after sr-scan', async () => {
  const src = await h.ok(['vdi-create', `sr-uuid=${L}`, 'name-label=big-lv', `virtual-size=${SIZE}`, 'sm-config:image-format=raw']);
  const lvPath = await h.attach(src);
  try {
    fillAlternateMiBs(lvPath);
  } finally {
    await h.detach(src);
  }
  const srcSha = (await lvmSha(h, src, SIZE)).sha;
  expect(await activations()).toEqual([]);

  const { dest } = await killMidCopy(src, L2);
  expect(await h.lvNames(L2)).toEqual(['MGT', `VHD-${dest}`]);
  expect(vdiUuids(h, L2)).toEqual([]);
  // The dead smctl held the source (read-only) and the destination attached.
  expect((await activations()).length).toBe(2);

  await h.ok(['sr-scan', `uuid=${L2}`]);
  expect(vdiUuids(h, L2)).toEqual([]);
  expect(await h.lvNames(L2)).toEqual(['MGT']);
  expect(await activations(), 'activations left').toEqual([]);
  expect(readdirSync(journals()), 'journal left').toEqual([]);
  expect(readdirSync(h.s.dir).filter((n) => n.includes('staging'))).toEqual([]);
  expect(await h.lvNames(L)).toEqual([`LV-${src}`, 'MGT']);
  expect((await lvmSha(h, src, SIZE)).sha).toBe(srcSha);
  await h.ok(['vdi-destroy', `uuid=${src}`]);
  expect(await h.lvNames(L)).toEqual(['MGT']);
}, CASE_MS);

it('file -> lvm (qcow2, through qemu-img convert) killed while qemu-img writes: qemu-img dies with smctl, nothing left after sr-scan', async () => {
  const src = await h.ok(['vdi-create', `sr-uuid=${F}`, 'name-label=big-q', `virtual-size=${SIZE}`, 'sm-config:image-format=raw']);
  const path = imagePath(h, F, src);
  fillAlternateMiBs(path);
  const srcSha = sha256File(path);
  expect(await h.lvNames(L)).toEqual(['MGT']);

  const child = execa(process.execPath, [SMCTL, 'vdi-copy', `uuid=${src}`, `sr-uuid=${L}`, 'dest-img-format=qcow2'], {
    env: { ...process.env, ...h.env },
    reject: false,
  });
  // The qemu-img convert writing into the destination LV (its argv names the source image).
  let writers = new Map<number, string[]>();
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline && child.exitCode === null) {
    writers = processesWith(['qemu-img', 'convert', path]);
    if (writers.size > 0) {
      child.kill('SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  if (child.exitCode === null && !child.killed) child.kill('SIGKILL');
  const r = await child;
  expect(writers.size, `qemu-img convert was never seen running; smctl: ${String(r.stderr)}`).toBe(1);
  expect(r.signal).toBe('SIGKILL');
  const [writer] = [...writers.keys()];
  expect(writers.get(writer!)!.some((a) => a.startsWith(`/dev/VG_XenStorage-${L}/QCOW2-`)), writers.get(writer!)!.join(' ')).toBe(true);
  // The kernel kills it with its parent; give it a moment to be reaped.
  const gone = Date.now() + 10_000;
  while (Date.now() < gone && processesWith(['qemu-img', 'convert', path]).size > 0) await new Promise((res) => setTimeout(res, 50));
  expect([...processesWith(['qemu-img', 'convert', path]).values()].map((a) => a.join(' ')), 'qemu-img still writing after smctl died').toEqual([]);
  expect(vdiUuids(h, L)).toEqual([]);

  await h.ok(['sr-scan', `uuid=${L}`]);
  expect(vdiUuids(h, L)).toEqual([]);
  expect(await h.lvNames(L)).toEqual(['MGT']);
  expect(await activations(), 'activations left').toEqual([]);
  expect(readdirSync(journals()), 'journal left').toEqual([]);
  expect(sha256File(path)).toBe(srcSha);
  await h.ok(['vdi-destroy', `uuid=${src}`]);
}, CASE_MS);
