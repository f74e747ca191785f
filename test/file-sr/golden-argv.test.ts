// Golden command lines: every external command the file-SR core and the `file`
// driver run, recorded through the tools' recorder hook while the real tools
// run on real files, compared with test/file-sr/fixtures/golden-argv.json.
// Paths are written with <SR>, <LOC> placeholders and uuids are fixed, so the
// fixture is exact. Regenerate (then review the diff!) with UPDATE_GOLDEN=1.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { vhdUtilExtensionsPath, vhdUtilPath } from '../../src/sdk/env.js';
import { opsFor } from '../../src/sdk/formats/index.js';
import { snapshotFiles, finishSnapshot } from '../../src/sdk/file-sr/snapshot.js';
import { resizeFile } from '../../src/sdk/file-sr/resize.js';
import { collectGarbage } from '../../src/sdk/file-sr/gc.js';
import { onHeaderPass, readInventory } from '../../src/sdk/file-sr/inventory.js';
import { FILE_SR } from '../../drivers/file/handlers.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import { unmountUnder } from './helpers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'golden-argv.json');
const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const SR_UUID = U(99);
const FORMATS = { srType: 'file', supported: ['vhd', 'qcow2', 'raw'] as const, defaultFormat: 'vhd' as const, deviceConfig: {} };

let dir = '';
afterEach(async () => {
  if (dir) {
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  dir = '';
});

/** The SR directories header passes read while it listens. */
function countPasses(): { dirs: string[]; stop: () => void } {
  const dirs: string[] = [];
  const stop = onHeaderPass((d) => dirs.push(d));
  return { dirs, stop: () => void stop() };
}

function fresh(): string {
  dir = mkdtempSync(join('/var/tmp', 'file-sr-golden-'));
  const sr = join(dir, 'sr');
  mkdirSync(sr);
  return sr;
}

/** Record the argv of everything `fn` runs, with paths and tool locations made stable. */
async function record(sr: string, fn: () => Promise<unknown>): Promise<string[][]> {
  const rec = recordToolCalls();
  try {
    await fn();
  } finally {
    rec.stop();
  }
  const tools = new Map([[vhdUtilPath(), 'vhd-util'], [vhdUtilExtensionsPath(), 'vhd-util']]);
  return rec.argvs().map((argv) =>
    argv.map((a, i) => {
      if (i === 0 && tools.has(a)) return tools.get(a)!;
      return a.split(sr).join('<SR>').split(dir).join('<DIR>');
    }),
  );
}

const golden: Record<string, string[][]> = existsSync(FIXTURE) ? (JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, string[][]>) : {};
const updating = process.env['UPDATE_GOLDEN'] === '1';
const seen: Record<string, string[][]> = {};

function check(name: string, argvs: string[][]): void {
  seen[name] = argvs;
  if (updating) {
    const all = { ...golden, ...seen };
    writeFileSync(FIXTURE, `${JSON.stringify(Object.fromEntries(Object.entries(all).sort()), null, 2)}\n`);
    return;
  }
  expect(golden[name], `fixture ${name} missing: run with UPDATE_GOLDEN=1 and review`).toBeDefined();
  expect(argvs).toEqual(golden[name]);
}

let next = 0;

describe('golden argv of the file SR', () => {
  it.each(['vhd', 'qcow2', 'raw'] as const)('vdi_create + snapshot (double) + resize of a %s VDI', async (format) => {
    const sr = fresh();
    next = 0;
    const path = join(sr, `${U(1)}.${format}`);
    check(`create ${format}`, await record(sr, () => opsFor(format).create(path, 8 * 1024 * 1024)));
    check(`snapshot ${format}`, await record(sr, async () => {
      const out = await snapshotFiles(sr, U(1), { op: 'vdi_snapshot', mode: 'double', formats: { ...FORMATS, supported: [...FORMATS.supported] }, newUuid: () => U(++next + 1) });
      finishSnapshot(sr, out.journal);
    }));
    const leaf = format === 'raw' ? 'vhd' : format;
    expect(existsSync(join(sr, `${U(1)}.${leaf}`))).toBe(true);
    check(`resize ${format}`, await record(sr, () => resizeFile(sr, U(1), 16 * 1024 * 1024)));
  });

  it.each(['vhd', 'qcow2'] as const)('GC of a %s chain: coalesce, re-parent, leaf-coalesce', async (format) => {
    const sr = fresh();
    next = 0;
    const ops = opsFor(format);
    const p = (n: number) => join(sr, `${U(n)}.${format}`);
    // root(1, hidden) ← node(2, hidden) ← leaf(3)
    await ops.create(p(1), 4 * 1024 * 1024);
    await ops.snapshot({ path: p(1), format }, p(2));
    await ops.snapshot({ path: p(2), format }, p(3));
    await ops.setHidden(p(1), true);
    await ops.setHidden(p(2), true);
    check(`gc ${format}`, await record(sr, () => collectGarbage(sr)));
    expect(existsSync(p(3)) && !existsSync(p(2)) && !existsSync(p(1))).toBe(true);
  });

  it('the whole SR in one header pass, read in-process: no process at all, never one per VDI', async () => {
    const sr = fresh();
    for (let i = 1; i <= 6; i++) await opsFor(i % 3 === 0 ? 'qcow2' : i % 3 === 1 ? 'vhd' : 'raw').create(join(sr, `${U(i)}.${i % 3 === 0 ? 'qcow2' : i % 3 === 1 ? 'vhd' : 'raw'}`), 2 * 1024 * 1024);
    let n = 0;
    const passes = countPasses();
    const argvs = await record(sr, async () => {
      n = (await readInventory(sr)).vdis.size;
    }).finally(passes.stop);
    expect(n).toBe(6);
    expect(passes.dirs).toEqual([sr]);
    check('scan', argvs);
    expect(argvs).toEqual([]);
  });

  it('sr_scan reads the headers once: the GC pass before it hands over the inventory it read last', async () => {
    const sr = fresh();
    const vhd = opsFor('vhd');
    for (let i = 1; i <= 3; i++) await vhd.create(join(sr, `${U(i)}.vhd`), 2 * 1024 * 1024);
    // Nothing to collect: one header pass, and that pass is the scan's inventory.
    let gc: Awaited<ReturnType<typeof collectGarbage>> | undefined;
    let passes = countPasses();
    const quiet = await record(sr, async () => {
      gc = await collectGarbage(sr, { coalesce: false });
    }).finally(passes.stop);
    expect(passes.dirs).toHaveLength(1);
    expect(quiet).toEqual([]);
    expect([...gc!.finalInventory!.vdis.keys()].sort()).toEqual([U(1), U(2), U(3)]);

    // A hidden VDI without children is garbage: removed, then one more pass shows the SR as it is now.
    await vhd.setHidden(join(sr, `${U(2)}.vhd`), true);
    passes = countPasses();
    await record(sr, async () => {
      gc = await collectGarbage(sr, { coalesce: false });
    }).finally(passes.stop);
    expect(gc!.removed).toEqual([U(2)]);
    expect(passes.dirs).toHaveLength(2);
    const now = await readInventory(sr);
    expect([...gc!.finalInventory!.vdis.keys()].sort()).toEqual([...now.vdis.keys()].sort());
    expect([...now.vdis.keys()].sort()).toEqual([U(1), U(3)]);
  });

  it('sr_attach / sr_detach of the file driver: bind mount and umount', async () => {
    const loc = fresh();
    const srDir = join(dir, 'mnt', SR_UUID);
    const ctx = {} as HandlerContext;
    const req = { sr_uuid: SR_UUID, device_config: { location: loc } };
    check('file attach', await record(loc, () => FILE_SR.attach(req, srDir, ctx)));
    check('file detach', await record(loc, () => FILE_SR.detach(req, srDir, ctx)));
    expect(existsSync(srDir)).toBe(false);
  });
});
