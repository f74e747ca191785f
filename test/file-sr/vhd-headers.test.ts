// The in-process header pass of a file SR (inventory.ts, formats/vhd-headers.ts) against
// what it replaced: one real `vhd-util scan -f -c -m <dir>/*.vhd` for the VHDs,
// on a mixed SR (VHD chains, a VHD child of a raw base, a qcow2 with a backing
// file, raw, a truncated VHD, a garbage VHD, a dot-file glob must not match).
// Every field of every image must agree, and both must name the same broken files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { opsFor, scanDirectory } from '../../src/sdk/formats/index.js';
import type { ScanRecord } from '../../src/sdk/formats/types.js';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';
import { readInventory } from '../../src/sdk/file-sr/inventory.js';
import { scanVhdHeaders } from '../../src/sdk/formats/vhd-headers.js';

const MiB = 1024 * 1024;
const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

let dir = '';
let sr = '';
const p = (n: number, ext: string) => join(sr, `${U(n)}.${ext}`);

beforeAll(async () => {
  dir = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'file-sr-headers-'));
  sr = join(dir, 'sr');
  mkdirSync(sr);
  const vhd = opsFor('vhd');
  const qcow2 = opsFor('qcow2');
  const raw = opsFor('raw');
  // VHD chain 1 ← 2 ← 3 (1, 2 hidden), a lone VHD 4
  await vhd.create(p(1, 'vhd'), 8 * MiB);
  await vhd.snapshot({ path: p(1, 'vhd'), format: 'vhd' }, p(2, 'vhd'));
  await vhd.snapshot({ path: p(2, 'vhd'), format: 'vhd' }, p(3, 'vhd'));
  await vhd.setHidden(p(1, 'vhd'), true);
  await vhd.setHidden(p(2, 'vhd'), true);
  await vhd.create(p(4, 'vhd'), 6 * MiB);
  // raw 5 (hidden) ← VHD 6: the child's header says its parent is raw
  writeFileSync(p(5, 'raw'), Buffer.alloc(0));
  await raw.resize(p(5, 'raw'), 4 * MiB);
  await vhd.snapshot({ path: p(5, 'raw'), format: 'raw' }, p(6, 'vhd'));
  await raw.setHidden(p(5, 'raw'), true);
  // qcow2 7 (hidden) ← qcow2 8: a backing file
  await qcow2.create(p(7, 'qcow2'), 8 * MiB);
  await qcow2.snapshot({ path: p(7, 'qcow2'), format: 'qcow2' }, p(8, 'qcow2'));
  await qcow2.setHidden(p(7, 'qcow2'), true);
  // Corrupt VHDs: a truncated copy of a good one (footer copy cut short), and garbage.
  copyFileSync(p(4, 'vhd'), p(9, 'vhd'));
  truncateSync(p(9, 'vhd'), 300);
  writeFileSync(p(10, 'vhd'), Buffer.alloc(4096, 0x42));
  // Not matched by `*.vhd` (glob skips a leading dot), whatever it holds.
  copyFileSync(p(4, 'vhd'), join(sr, '.hidden-copy.vhd'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An error's own words, without the prefix that says which reader found it. */
const errorKey = (r: ScanRecord) => (r.kind === 'error' ? { path: r.path, format: r.format, why: r.message.replace(/^(vhd-util scan|VHD header scan): /, '') } : r);

describe('file-SR header pass in-process', () => {
  it('agrees with vhd-util scan on every field of every VHD, and on which are corrupt', async () => {
    const tool = await vhdUtil.scan({ pattern: join(sr, '*.vhd'), fast: true, continueOnError: true });
    const mine = scanVhdHeaders(sr);
    expect(mine.map((r) => (r.kind === 'image' ? r.info.path : r.path))).toEqual([3, 4, 6, 9, 10, 1, 2].map((n) => p(n, 'vhd')).sort());
    expect(tool).toHaveLength(mine.length);
    for (const r of mine) {
      const name = basename(r.kind === 'image' ? r.info.path : r.path);
      const t = tool.find((e) => basename(e.name) === name);
      expect(t, name).toBeDefined();
      if (r.kind === 'error') {
        expect(t!.kind, name).toBe('error');
        if (t!.kind === 'error') expect(r.message).toBe(`VHD header scan: ${t!.message} (${t!.error})`);
        continue;
      }
      expect(t!.kind, name).toBe('vhd');
      if (t!.kind !== 'vhd') continue;
      expect({ capacity: r.info.virtualSize, size: r.info.physicalSize, hidden: r.info.hidden ? 1 : 0, parent: r.info.parent === null ? null : basename(r.info.parent) }, name).toEqual({
        capacity: t!.capacity,
        size: t!.size,
        hidden: t!.hidden,
        parent: t!.parent,
      });
    }
    expect(mine.filter((r) => r.kind === 'error').map((r) => (r.kind === 'error' ? basename(r.path) : ''))).toEqual([`${U(9)}.vhd`, `${U(10)}.vhd`]);
  });

  it('gives the inventory the same records as the vhd-util path of the formats layer, qcow2 backing files and raw parents included', async () => {
    // scanDirectory: VHDs through one `vhd-util scan` process (plus a header read for a raw parent), qcow2/raw in-process.
    const viaTool = (await scanDirectory(sr)).map(errorKey);
    const inProcess = (await scanDirectory(sr, undefined, { vhdHeaders: 'in-process' })).map(errorKey);
    expect(inProcess).toEqual(viaTool);
    expect(viaTool).toHaveLength(10);

    const inv = await readInventory(sr);
    expect([...inv.vdis.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map(U));
    expect(inv.vdis.get(U(6))).toMatchObject({ format: 'vhd', parent: U(5), hidden: false });
    expect(inv.vdis.get(U(5))).toMatchObject({ format: 'raw', children: [U(6)], hidden: true });
    expect(inv.vdis.get(U(8))).toMatchObject({ format: 'qcow2', parent: U(7), hidden: false });
    expect(inv.vdis.get(U(3))).toMatchObject({ parent: U(2), virtualSize: 8 * MiB });
    expect(inv.vdis.get(U(1))).toMatchObject({ parent: null, hidden: true, children: [U(2)] });
    expect(inv.errors.map((e) => basename(e.path))).toEqual([`${U(9)}.vhd`, `${U(10)}.vhd`]);
  });
});
