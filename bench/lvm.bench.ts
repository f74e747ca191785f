// The lvm driver (drivers/lvm/LVMSR) against the bare LVM commands the same
// operations need, measured in the same run, on an LVM SR over a loop device
// (no device-mapper on this kernel: LVM runs `--driverloaded n`).
//
// Fixture: an SR holding 500 VDIs, as sr_scan reports them: 130 snapshot groups
// (base, leaf, snapshot clone: 60 VHD, 50 qcow2, 20 raw bases with VHD leaves)
// and 110 single VDIs (40 VHD, 40 qcow2, 30 raw), all 8 MiB virtual. One VDI or
// group of each kind is made by the driver itself (vdi_create, vdi_snapshot);
// the other 491 are copies of those: their LVs added to the VG metadata in ONE
// `vgcfgrestore` (LVM's own writer; LV stanzas cloned from the driver-made ones:
// same size, permission, tags), their image bytes copied from the driver-made
// LVs with every uuid inside rewritten (LV names in VHD parent names/locators and
// qcow2 backing files, VHD unique ids, checksums recomputed), and their MGT
// records cloned from the driver's. 500 `lvcreate`s would take minutes (every
// LVM command rewrites the whole metadata). The bench exits non-zero unless the
// first sr_scan reports exactly the 500 VDIs with the expected formats and parents,
// and checks one copied VHD leaf + base (`vhd-util check -p`) and one copied qcow2
// (`qemu-img check`). The PV's backing file (24 GiB sparse, ~1 GiB written: VHD
// BATs preallocated for 2 TiB) is on /dev/shm when there is one ($SMAPI_BENCH_TMP overrides).
//
// Figures (median of ROUNDS; wall time and CPU time = user+sys of this process
// and its children: load from other work on the machine inflates wall, not CPU):
//   1. sr_scan: the driver's sr_scan (one LVMSR process, as xapi runs it, the
//      toolstack library held open in this process: its start-up, one lvs, one
//      pvs, every header read from the PV, MGT read, reconciliation against the
//      XenAPI endpoint; steady state) and the same via smctl (+ CLI start-up),
//      against the bare `lvs` + `pvs` with the driver's exact argv.
//      Goal: driver sr_scan <= 1.5x the bare commands.
//   2. vdi_snapshot of a VHD and of a qcow2 VDI (default "double": base, leaf,
//      clone): the driver's call (one LVMSR process) against the bare LVM
//      commands it makes (lvrename, lvcreate x2, lvchange -p r, the driver's argv),
//      on the same 500-VDI VG. Tool processes per snapshot are counted from the
//      golden argv (test/lvm/fixtures/golden-argv.yaml: "vdi_snapshot vhd", and
//      "vdi_clone qcow2", the same double path), not measured: the driver's
//      children are not visible from here. Goal: <= 3x (the driver also writes
//      two images and hides the base through loop devices).
// Run: npx tsx bench/lvm.bench.ts   (needs dist/ built: npx tsc -p tsconfig.build.json)
import { execa } from 'execa';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { ImageFormat } from '../src/driver-info.js';
import { readInventory, type VdiNode } from '../src/sdk/lvm-sr/inventory.js';
import { PvReader, readVgLayout, type LvExtents } from '../src/sdk/lvm-sr/layout.js';
import { openMetadata } from '../src/sdk/lvm-sr/metadata.js';
import { lvNameOf } from '../src/sdk/lvm-sr/naming.js';
import * as losetup from '../src/sdk/lvm-sr/losetup.js';
import { openLvmSr, type LvmSr } from '../src/sdk/lvm-sr/sr.js';
import { vhdUtilPath } from '../src/sdk/env.js';
import { headerChecksum } from '../src/sdk/lvm-sr/vhd-parent.js';
import * as lvm from '../src/sdk/tools/lvm.js';
import { runTool } from '../src/sdk/tools/run.js';
import { srScan, Toolstack, vdiCreate } from '../src/toolstack/index.js';
import { benchEnv, median, timed } from './stats.js';

const ROUNDS = 4;
const SNAP_ROUNDS = 4;
const SCAN_GOAL = 1.5;
const SNAP_GOAL = 3;
const ROOT = resolve(import.meta.dirname, '..');
const MiB = 1024 * 1024;
const VSIZE = 8 * MiB;
const CHUNK = 64 * 1024;
/** Copies to make of each driver-made template (the template itself is one more). */
const GROUPS = { vhd: 60, qcow2: 50, raw: 20 } as const;
const SINGLES = { vhd: 40, qcow2: 40, raw: 30 } as const;

/** CPU time (user+sys, ms) of this process plus the children it has waited for. */
function cpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000 + (Number(rest[13]) + Number(rest[14])) * 10;
}

interface Sample { wall: number; cpu: number }
async function measured(fn: () => Promise<unknown>): Promise<Sample> {
  const c0 = cpuMs();
  const wall = await timed(fn);
  return { wall, cpu: cpuMs() - c0 };
}

/** A template: driver-made VDIs (one single VDI, or base + leaf + clone) and what each copy must look like. */
interface Template {
  kind: string;
  nodes: VdiNode[];
  copies: number;
}

/** One cloned VDI: its template node, its new uuid, and its expected parent. */
interface Clone { from: VdiNode; uuid: string; parent: string | null; lv: string }

/** 32 characters in LVM's id alphabet, grouped 6-4-4-4-4-4-6. */
function lvmId(): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const s = [...randomBytes(32)].map((b) => a[b % a.length]).join('');
  return [6, 4, 4, 4, 4, 4, 6].reduce<{ out: string[]; at: number }>((o, n) => ({ out: [...o.out, s.slice(o.at, o.at + n)], at: o.at + n }), { out: [], at: 0 }).out.join('-');
}

/** A stretch of non-zero bytes of a template LV, where its uuids are inside it, and its VHD structures. */
interface Run { at: number; data: Buffer; patches: { at: number; key: string }[]; footers: number[]; header: number | null }

const utf16be = (s: string): Buffer => Buffer.from(s, 'utf16le').swap16();
const encodings = (uuid: string): [string, Buffer][] => [['ascii', Buffer.from(uuid, 'latin1')], ['utf16le', Buffer.from(uuid, 'utf16le')], ['utf16be', utf16be(uuid)]];

/**
 * The non-zero 64 KiB chunks of a template LV merged into runs (fresh extents
 * read as zeros, so a copy writes only these), each with the offsets of the
 * needles found in it, found once so that a copy patches without searching.
 */
function templateRuns(r: PvReader, ext: LvExtents, format: ImageFormat, needles: { key: string; bytes: Buffer }[]): Run[] {
  const runs: Run[] = [];
  let cur: Buffer[] = [];
  let start = 0;
  const flush = (end: number) => {
    if (cur.length > 0) runs.push({ at: start, data: Buffer.concat(cur), patches: [], footers: [], header: null });
    cur = [];
    start = end;
  };
  for (let at = 0; at < ext.lv.lvSize; at += CHUNK) {
    const b = r.read(ext, at, CHUNK);
    if (b.some((x) => x !== 0)) {
      if (cur.length === 0) start = at;
      cur.push(Buffer.from(b));
    } else flush(at + CHUNK);
  }
  flush(ext.lv.lvSize);
  const headerAt = format === 'vhd' ? Number(r.read(ext, 0, 512).readBigUInt64BE(16)) : -1;
  for (const run of runs) {
    for (const n of needles) for (let i = run.data.indexOf(n.bytes); i !== -1; i = run.data.indexOf(n.bytes, i + 1)) run.patches.push({ at: i, key: n.key });
    if (format !== 'vhd') continue;
    for (let i = 0; i + 512 <= run.data.length; i += 512) if (run.data.toString('latin1', i, i + 8) === 'conectix') run.footers.push(i);
    if (headerAt >= run.at && headerAt + 1024 <= run.at + run.data.length) run.header = headerAt - run.at;
  }
  return runs;
}

/** VHD checksums after a patch: footer copies (ones' complement of the byte sum, field 64..67 zeroed) and the header. */
function fixVhdChecksums(b: Buffer, footers: readonly number[], header: number | null): void {
  for (const i of footers) {
    let sum = 0;
    for (let k = 0; k < 512; k++) if (k < 64 || k >= 68) sum = (sum + b[i + k]!) >>> 0;
    b.writeUInt32BE(~sum >>> 0, i + 64);
  }
  if (header !== null) {
    const h = b.subarray(header, header + 1024);
    h.writeUInt32BE(headerChecksum(h), 36);
  }
}

async function main(): Promise<void> {
  // The PV's backing file on tmpfs when there is one: the copies write ~1 GiB (VHD BATs preallocated for 2 TiB).
  const tmpRoot = process.env['SMAPI_BENCH_TMP'] ?? (existsSync('/dev/shm') ? '/dev/shm' : '/var/tmp');
  const dir = mkdtempSync(join(tmpRoot, 'smapi-bench-lvm-'));
  const env = benchEnv(dir, { LVM_SUPPRESS_FD_WARNINGS: '1' });
  delete env['SM_FIST'];
  const smctl = async (...args: string[]) => (await execa(process.execPath, [join(ROOT, 'bin', 'smctl'), ...args], { env, extendEnv: false })).stdout.trim();
  const img = join(dir, 'pv.img');
  writeFileSync(img, '');
  await execa('truncate', ['-s', '24G', img]);
  const device = (await execa('losetup', ['--find', '--show', img])).stdout.trim();
  let srUuid: string | null = null;
  let ts: Toolstack | null = null;
  try {
    const t0 = performance.now();
    const phases: string[] = [];
    let tp = performance.now();
    let cp = cpuMs();
    const phase = (name: string) => {
      phases.push(`${name} ${((performance.now() - tp) / 1000).toFixed(1)} s (CPU ${((cpuMs() - cp) / 1000).toFixed(1)} s)`);
      tp = performance.now();
      cp = cpuMs();
    };
    srUuid = await smctl('sr-create', 'type=lvm', `device-config:device=${device}`, 'name-label=bench');
    Object.assign(process.env, env);
    ts = Toolstack.open({ dbPath: env['SMCTL_DB']! });
    const sr: LvmSr = openLvmSr(srUuid, { device });

    // ---- templates, made by the driver
    const made: Record<string, string> = {};
    for (const f of ['vhd', 'qcow2', 'raw'] as const) {
      made[`single-${f}`] = String((await vdiCreate(ts, { srUuid, nameLabel: `single ${f}`, virtualSize: BigInt(VSIZE), smConfig: { 'image-format': f } }))['uuid']);
      const g = String((await vdiCreate(ts, { srUuid, nameLabel: `group ${f}`, virtualSize: BigInt(VSIZE), smConfig: { 'image-format': f } }))['uuid']);
      // The driver's call alone (vdi-snapshot would add a vdi_update call): one process less to wait for.
      await ts.call(ts.plugin('lvm'), { command: 'vdi_snapshot', ...ts.srCallPart(ts.srByUuid(srUuid)), ...ts.vdiCallPart(ts.vdiByUuid(g)), driverParams: {} });
      made[`group-${f}`] = g;
    }
    phase('driver-made templates');
    const inv0 = await readInventory(sr);
    if (inv0.errors.length > 0) throw new Error(`driver-made templates unreadable: ${JSON.stringify(inv0.errors)}`);
    const node = (u: string) => inv0.vdis.get(u) ?? (() => { throw new Error(`template ${u} missing`); })();
    const templates: Template[] = [];
    for (const f of ['vhd', 'qcow2', 'raw'] as const) {
      templates.push({ kind: `single ${f}`, nodes: [node(made[`single-${f}`]!)], copies: SINGLES[f] - 1 });
      const leaf = node(made[`group-${f}`]!);
      const base = node(leaf.parent!);
      templates.push({ kind: `group ${f}`, nodes: [base, ...base.children.map(node)], copies: GROUPS[f] - 1 });
    }
    for (const t of templates) if (t.kind.startsWith('group') && t.nodes.length !== 3) throw new Error(`${t.kind}: expected base + leaf + clone, got ${t.nodes.length}`);

    // ---- the VG metadata: one vgcfgbackup, LV stanzas cloned, one vgcfgrestore
    const backup = join(dir, 'vg.txt');
    await runTool(['vgcfgbackup', ...lvm.scopeArgs(sr.scope), '-f', backup, sr.vg]);
    let text = readFileSync(backup, 'utf8');
    const stanza = (lv: string): string => {
      const m = new RegExp(`\\n\\t\\t${lv} \\{\\n[\\s\\S]*?\\n\\t\\t\\}\\n`).exec(text);
      if (m === null) throw new Error(`LV ${lv} not in the VG metadata backup`);
      if (!/segment_count = 1\n/.test(m[0]) || !/"pv0", \d+/.test(m[0])) throw new Error(`LV ${lv} is not one linear segment on pv0`);
      return m[0];
    };
    let nextExtent = 0;
    for (const m of text.matchAll(/extent_count = (\d+)[\s\S]*?"pv0", (\d+)/g)) nextExtent = Math.max(nextExtent, Number(m[1]) + Number(m[2]));
    const clones: Clone[][] = [];
    const added: string[] = [];
    for (const t of templates) {
      for (let i = 0; i < t.copies; i++) {
        const map = new Map(t.nodes.map((n) => [n.uuid, randomUUID()]));
        const group: Clone[] = t.nodes.map((n) => ({ from: n, uuid: map.get(n.uuid)!, parent: n.parent === null ? null : map.get(n.parent)!, lv: lvNameOf(map.get(n.uuid)!, n.format) }));
        for (const c of group) {
          const s = stanza(c.from.lvName);
          const count = Number(/extent_count = (\d+)/.exec(s)![1]);
          added.push(s.replace(`\t\t${c.from.lvName} {`, `\t\t${c.lv} {`).replace(/id = "[^"]+"/, `id = "${lvmId()}"`).replace(/"pv0", \d+/, `"pv0", ${nextExtent}`));
          nextExtent += count;
        }
        clones.push(group);
      }
    }
    const end = text.indexOf('\n\t}\n', text.indexOf('\tlogical_volumes {'));
    text = `${text.slice(0, end)}${added.join('').replace(/\n$/, '')}${text.slice(end)}`;
    writeFileSync(backup, text);
    await runTool(['vgcfgrestore', ...lvm.scopeArgs(sr.scope), '-f', backup, sr.vg]);

    phase('vgcfgrestore');
    // ---- image bytes: the templates' non-zero runs, with every uuid inside rewritten per copy
    const layout = await readVgLayout(sr.vg, sr.scope);
    const reader = new PvReader('r');
    const runsOf = new Map<string, Run[]>();
    try {
      for (const t of templates) {
        // What may occur inside a template's images: its group's uuids (LV names) in three encodings, and VHD unique ids.
        const needles: { key: string; bytes: Buffer }[] = [];
        for (const n of t.nodes) {
          for (const [enc, bytes] of encodings(n.uuid)) needles.push({ key: `${n.uuid}:${enc}`, bytes });
          if (n.format === 'vhd') needles.push({ key: `id:${n.uuid}`, bytes: Buffer.from(reader.read(layout.lvs.get(n.lvName)!, 68, 16)) });
        }
        for (const n of t.nodes) runsOf.set(n.uuid, n.format === 'raw' ? [] : templateRuns(reader, layout.lvs.get(n.lvName)!, n.format, needles));
      }
    } finally {
      reader.close();
    }
    // Straight into the PV's backing file (one copy of the bytes, not two through the loop
    // device); the loop device never read these extents, and its cache is dropped after.
    const fd = openSync(img, 'r+');
    try {
      for (const group of clones) {
        const value = new Map<string, Buffer>();
        for (const c of group) {
          for (const [enc, bytes] of encodings(c.uuid)) value.set(`${c.from.uuid}:${enc}`, bytes);
          value.set(`id:${c.from.uuid}`, randomBytes(16));
        }
        for (const c of group) {
          const ext = layout.lvs.get(c.lv);
          const piece = ext?.pieces[0];
          if (ext === undefined || piece === undefined || ext.pieces.length !== 1) throw new Error(`restored LV ${c.lv} is not one linear piece`);
          for (const run of runsOf.get(c.from.uuid)!) {
            let b = run.data;
            if (run.patches.length > 0) {
              b = Buffer.from(run.data);
              for (const p of run.patches) value.get(p.key)!.copy(b, p.at);
              if (c.from.format === 'vhd') fixVhdChecksums(b, run.footers, run.header);
            }
            writeSync(fd, b, 0, b.length, piece.pvOffset + run.at);
          }
        }
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await runTool(['blockdev', '--flushbufs', device]);
    phase('image copies');
    // ---- MGT records, as the driver writes them (copies of the templates')
    const meta = await openMetadata(sr, () => undefined, layout.lvs.get('MGT') ?? null);
    meta.update((c) => {
      for (const group of clones) for (const k of group) {
        const rec = c.vdis[k.from.uuid];
        if (rec !== undefined) c.vdis[k.uuid] = { ...rec };
      }
    });

    phase('MGT');
    // ---- what sr_scan must report
    const expected = new Map<string, { format: ImageFormat; parent: string | null }>();
    for (const t of templates) for (const n of t.nodes) expected.set(n.uuid, { format: n.format, parent: n.parent });
    for (const group of clones) for (const c of group) expected.set(c.uuid, { format: c.from.format, parent: c.parent });
    const first = await timed(() => smctl('sr-scan', `uuid=${srUuid}`));
    const srRef = ts.srByUuid(srUuid).ref;
    const records = ts.db.all('VDI').filter((v) => v['SR'] === srRef);
    const wrong: string[] = [];
    for (const v of records) {
      const e = expected.get(String(v['location']));
      const sm = v['sm_config'] as Record<string, string>;
      if (e === undefined) wrong.push(`unexpected VDI ${String(v['location'])}`);
      else if (sm['image-format'] !== e.format || (sm['vhd-parent'] ?? null) !== e.parent) wrong.push(`${String(v['location'])}: ${sm['image-format']}/${sm['vhd-parent'] ?? '-'}, expected ${e.format}/${e.parent ?? '-'}`);
    }
    const byFormat = (f: ImageFormat) => records.filter((v) => (v['sm_config'] as Record<string, string>)['image-format'] === f).length;
    const withParent = records.filter((v) => (v['sm_config'] as Record<string, string>)['vhd-parent'] !== undefined).length;
    // The copies are images the real tools accept: a copied VHD leaf with its copied base
    // (`vhd-util check -p`: checksums, BAT, parent uuid), and a copied qcow2 base (`qemu-img check`),
    // reached through loop devices over their extents and links named as the LVs.
    const vhdGroup = clones.find((g) => g.length === 3 && g[0]!.from.format === 'vhd')!;
    const qBase = clones.find((g) => g.length === 3 && g[0]!.from.format === 'qcow2')![0]!;
    const links = join(dir, 'links');
    mkdirSync(links);
    const loops: string[] = [];
    try {
      for (const c of [vhdGroup[0]!, vhdGroup[1]!, qBase]) {
        const ext = layout.lvs.get(c.lv)!.pieces[0]!;
        const loop = await losetup.attachRange({ backing: ext.pv, offset: ext.pvOffset, length: ext.length });
        loops.push(loop);
        symlinkSync(loop, join(links, c.lv));
      }
      await runTool([vhdUtilPath(), 'check', '-p', '-n', join(links, vhdGroup[1]!.lv)]);
      await runTool(['qemu-img', 'check', '-f', 'qcow2', join(links, qBase.lv)]);
    } finally {
      for (const l of loops) await losetup.detach(l);
    }
    phase('first scan + checks');
    console.log(`fixture phases: ${phases.join(', ')}`);
    console.log(`fixture: ${records.length} VDIs (${byFormat('vhd')} vhd, ${byFormat('qcow2')} qcow2, ${byFormat('raw')} raw; ${withParent} with a parent), ` +
      `${layout.lvs.size} LVs; made in ${((performance.now() - t0) / 1000).toFixed(1)} s; first sr_scan via smctl (introduces 491): ${(first / 1000).toFixed(1)} s`);
    if (records.length !== 500 || expected.size !== 500 || wrong.length > 0) {
      throw new Error(`sr_scan reported ${records.length} VDIs (expected 500); ${wrong.length} wrong: ${wrong.slice(0, 5).join('; ')}`);
    }

    // ---- 1. sr_scan
    const bareScan = [lvm.lvsArgv({ vg: sr.vg, segments: true }, sr.scope), lvm.pvsArgv({ devices: sr.devices }, sr.scope)];
    const bare: Sample[] = [];
    const core: Sample[] = [];
    const driver: Sample[] = [];
    const viaSmctl: Sample[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      bare.push(await measured(async () => { for (const a of bareScan) await runTool(a); }));
      core.push(await measured(() => readInventory(sr)));
      driver.push(await measured(() => srScan(ts!, srUuid!)));
      viaSmctl.push(await measured(() => smctl('sr-scan', `uuid=${srUuid}`)));
    }
    const last = readFileSync(env['SM_LOG_FILE']!, 'utf8').split('\n').filter((l) => l.includes('sr_scan: ')).at(-1) ?? '';

    // ---- 2. snapshot: the driver's call against its LVM commands, on the same VG
    const golden = parse(readFileSync(join(ROOT, 'test/lvm/fixtures/golden-argv.yaml'), 'utf8')) as { name: string; argv: string[][] }[];
    const snapRows: { format: ImageFormat; driver: Sample[]; bare: Sample[]; procs: number; lvmProcs: number }[] = [];
    const singles = (f: ImageFormat) => clones.filter((g) => g.length === 1 && g[0]!.from.format === f).map((g) => g[0]!.uuid);
    for (const format of ['vhd', 'qcow2'] as const) {
      const g = golden.find((c) => c.name === (format === 'vhd' ? 'vdi_snapshot vhd' : 'vdi_clone qcow2'));
      const row = { format, driver: [] as Sample[], bare: [] as Sample[], procs: g?.argv.length ?? NaN, lvmProcs: g?.argv.filter((a) => /^(lvs|pvs|vgs|lv\w+)$/.test(a[0]!)).length ?? NaN };
      // Single VDIs (not bases): each round snapshots a different one, so every chain is one deep.
      const pool = singles(format);
      if (pool.length < 2 * SNAP_ROUNDS) throw new Error(`only ${pool.length} single ${format} VDIs to snapshot`);
      const leafLvSize = (inv0.vdis.get(made[`single-${format}`]!)!).lvSize;
      for (let i = 0; i < SNAP_ROUNDS; i++) {
        const mine = pool[2 * i]!;
        const other = pool[2 * i + 1]!;
        const runDriver = async () => {
          const src = ts!.vdiByUuid(mine);
          const s = ts!.srByUuid(srUuid!);
          row.driver.push(await measured(() => ts!.call(ts!.plugin('lvm'), { command: 'vdi_snapshot', ...ts!.srCallPart(s), ...ts!.vdiCallPart(src), driverParams: {} })));
        };
        const runBare = async () => {
          const from = lvNameOf(other, format);
          const base = lvNameOf(randomUUID(), format);
          const argvs = [
            lvm.lvrenameArgv({ vg: sr.vg, from, to: base }, sr.scope),
            lvm.lvcreateArgv({ vg: sr.vg, name: from, sizeBytes: leafLvSize, activate: false }, sr.scope),
            lvm.lvcreateArgv({ vg: sr.vg, name: lvNameOf(randomUUID(), format), sizeBytes: leafLvSize, activate: false }, sr.scope),
            lvm.lvchangeArgv({ vg: sr.vg, name: base, permission: 'r' }, sr.scope),
          ];
          row.bare.push(await measured(async () => { for (const a of argvs) await runTool(a); }));
        };
        // Alternate which goes first, so neither always meets the same VG size or cache.
        if (i % 2 === 0) { await runDriver(); await runBare(); } else { await runBare(); await runDriver(); }
      }
      snapRows.push(row);
    }

    // ---- report
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
    const w = (xs: Sample[]) => median(xs.map((x) => x.wall));
    const c = (xs: Sample[]) => median(xs.map((x) => x.cpu));
    console.log(`load average: ${readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')}; median of ${ROUNDS} (scan) / ${SNAP_ROUNDS} (snapshot) rounds`);
    console.log(`last driver scan: ${last.replace(/^.*sr_scan: /, '')}`);
    const b = w(bare);
    const bc = c(bare);
    console.log(`sr_scan, 500 VDIs:`);
    console.log(`  bare lvs + pvs (driver's argv):            ${fmt(b)} wall 1.00x | ${fmt(bc)} CPU 1.00x  (baseline)`);
    const scanRow = (label: string, xs: Sample[], goal: boolean) =>
      console.log(`  ${label} ${fmt(w(xs))} wall ${(w(xs) / b).toFixed(2)}x | ${fmt(c(xs))} CPU ${(c(xs) / bc).toFixed(2)}x` +
        (goal ? `  goal <= ${SCAN_GOAL}x: ${w(xs) / b <= SCAN_GOAL ? 'MET' : 'MISSED'} (wall), ${c(xs) / bc <= SCAN_GOAL ? 'MET' : 'MISSED'} (CPU)` : ''));
    scanRow('core scan in-process (readInventory):     ', core, false);
    scanRow('driver sr_scan, one LVMSR call (steady):  ', driver, true);
    scanRow('sr_scan via smctl (+ CLI start-up):       ', viaSmctl, false);
    console.log(`vdi_snapshot (double: base + leaf + clone), 8 MiB VDI on the 500-VDI VG:`);
    for (const r of snapRows) {
      const bw = w(r.bare);
      const bcpu = c(r.bare);
      console.log(`  ${r.format.padEnd(5)} bare lvrename + 2 lvcreate + lvchange: ${fmt(bw)} wall | ${fmt(bcpu)} CPU (baseline, 4 processes)`);
      console.log(`  ${r.format.padEnd(5)} driver vdi_snapshot, one LVMSR call:    ${fmt(w(r.driver))} wall ${(w(r.driver) / bw).toFixed(2)}x | ${fmt(c(r.driver))} CPU ${(c(r.driver) / bcpu).toFixed(2)}x` +
        `  goal <= ${SNAP_GOAL}x: ${w(r.driver) / bw <= SNAP_GOAL ? 'MET' : 'MISSED'} (wall), ${c(r.driver) / bcpu <= SNAP_GOAL ? 'MET' : 'MISSED'} (CPU)`);
      console.log(`  ${r.format.padEnd(5)} tool processes per driver snapshot (golden argv): ${r.procs}, of which LVM ${r.lvmProcs}`);
    }
    console.log(`whole bench: ${((performance.now() - t0) / 1000).toFixed(0)} s wall, ${(cpuMs() / 1000).toFixed(0)} s CPU (this process + children)`);
  } finally {
    ts?.close();
    await cleanup(dir, device, srUuid);
  }
}

/** Loop devices over our PV (driver activations without device-mapper), their /dev/<vg> links, the VG, the PV's loop, the files. */
async function cleanup(dir: string, device: string, srUuid: string | null): Promise<void> {
  const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { reject: false });
  const ours = String(stdout).split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === device).map((f) => f[0]!);
  if (srUuid !== null) {
    const vgDir = join('/dev', `VG_XenStorage-${srUuid}`);
    if (existsSync(vgDir)) {
      for (const e of readdirSync(vgDir)) {
        try {
          if (ours.includes(readlinkSync(join(vgDir, e)))) rmSync(join(vgDir, e), { force: true });
        } catch { /* gone meanwhile */ }
      }
      if (readdirSync(vgDir).length === 0) rmSync(vgDir, { recursive: true, force: true });
    }
  }
  for (const l of ours) await execa('losetup', ['-d', l], { reject: false });
  const scope = lvm.scopeArgs({ devices: [device] });
  if (srUuid !== null) await execa('vgremove', [...scope, '-f', `VG_XenStorage-${srUuid}`], { reject: false, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  await execa('pvremove', [...scope, '-ff', '-y', device], { reject: false, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  await execa('losetup', ['-d', device], { reject: false });
  rmSync(dir, { recursive: true, force: true });
}

mkdirSync('/var/tmp', { recursive: true });
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
