// Every pair of image formats between a file SR and an LVM SR (LVMSR on a
// loop device: its VDIs are block devices), both ways, and LVM -> LVM for a
// representative set, through smctl with the real tools: vdi-pool-migrate,
// content compared after the move, the source gone afterwards.
//
// The LVM SR's free space is dirtied first (a VDI filled with 0xA5, then
// destroyed: lvremove leaves the bytes on the PV), so destinations are carved
// out of extents holding garbage. The copy engine skips zero blocks, which is
// right only if every new destination reads as zeros where nothing is written:
// a fresh qcow2/VHD header over garbage, and a raw LV the driver zeroed.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { assertBuilt } from '../toolstack/helpers.js';
import { filledVdi, imageOf, listing, sha, vdiUuids, withDb } from './helpers.js';
import { expectedSha, filledLvmVdi, formatOf, lvmHost, lvmSha, type LvmHost } from './lvm-helpers.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
// Each case is several smctl -> driver round trips; on a loaded 2-core machine one can take minutes.
const CASE_MS = 600_000;
const FORMATS: ImageFormat[] = ['vhd', 'qcow2', 'raw'];
const PAIRS = FORMATS.flatMap((from) => FORMATS.map((to) => [from, to] as const));
// Data at the start, across a 2 MiB block boundary, and in the last block; the rest stays a hole.
const PIECES: [number, Buffer][] = [
  [0, randomBytes(4096)],
  [3 * MiB - 1000, randomBytes(5000)],
  [SIZE - 65536, randomBytes(65536)],
];
const WANT = expectedSha(SIZE, PIECES);
const DIRTY = 0xa5;
const DIRTY_MIB = 192;

let h: LvmHost;
let F: string;
let L: string;
let L2: string;

/** How many MiB of the PV start with the dirty pattern (read straight from the loop device). */
function dirtyMiBOnPv(device: string): number {
  const fd = openSync(device, 'r');
  const buf = Buffer.alloc(MiB);
  let n = 0;
  try {
    for (let pos = 0; readSync(fd, buf, 0, MiB, pos) === MiB; pos += MiB) if (buf[0] === DIRTY && buf[MiB - 1] === DIRTY) n++;
  } finally {
    closeSync(fd);
  }
  return n;
}

/** Fills the SR's free space at the start of its PV with the dirty pattern, through a VDI then destroyed. */
async function dirty(sr: string): Promise<void> {
  const junk = await h.ok(['vdi-create', `sr-uuid=${sr}`, 'name-label=junk', `virtual-size=${DIRTY_MIB}MiB`, 'sm-config:image-format=raw']);
  const path = await h.attach(junk);
  writeFileSync(path, Buffer.alloc(DIRTY_MIB * MiB, DIRTY));
  await h.detach(junk);
  await h.ok(['vdi-destroy', `uuid=${junk}`]);
  expect(await h.lvNames(sr)).toEqual(['MGT']);
}

beforeAll(async () => {
  assertBuilt();
  h = await lvmHost([512, 512]);
  F = await h.newFileSr('file');
  L = await h.newLvmSr('lvm', 0);
  L2 = await h.newLvmSr('lvm2', 1);
  await dirty(L);
  await dirty(L2);
}, CASE_MS);

afterAll(async () => {
  await h?.cleanupAll();
});

it('the LVM SRs start with garbage in their free extents (so the pairs below prove zero-skipping is safe there)', () => {
  for (const l of h.loops) expect(dirtyMiBOnPv(l.device)).toBeGreaterThanOrEqual(DIRTY_MIB - 4);
});

describe('vdi-pool-migrate file -> lvm', () => {
  it.each(PAIRS)('%s -> %s: same content in the new LV, the source file gone', async (from, to) => {
    const src = await filledVdi(h, F, from, SIZE, PIECES);
    expect(await sha(h, F, src, SIZE)).toBe(WANT);
    const lvsBefore = await h.lvNames(L);
    const out = await h.ok(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${L}`, `dest-img-format=${to}`]);
    expect(out).toMatch(/^[0-9a-f-]{36}$/);
    const prefix = { vhd: 'VHD', qcow2: 'QCOW2', raw: 'LV' }[to];
    expect(await h.lvNames(L)).toEqual([...lvsBefore, `${prefix}-${out}`].sort());
    expect(formatOf(h, out)).toBe(to);
    const got = await lvmSha(h, out, SIZE);
    expect(got.path).toBe(`/dev/VG_XenStorage-${L}/${prefix}-${out}`);
    expect(got.sha).toBe(WANT);
    expect(vdiUuids(h, F)).not.toContain(src);
    expect(listing(h, F).filter((n) => n.startsWith(src))).toEqual([]);
    // Back to an empty VG, so the next destination again lands on the dirty extents.
    await h.ok(['vdi-destroy', `uuid=${out}`]);
    expect(await h.lvNames(L)).toEqual(['MGT']);
  }, CASE_MS);
});

describe('vdi-pool-migrate lvm -> file', () => {
  it.each(PAIRS)('%s -> %s: same content in the new file, the source LV gone', async (from, to) => {
    const src = await filledLvmVdi(h, L, from, SIZE, PIECES);
    expect((await lvmSha(h, src, SIZE)).sha).toBe(WANT);
    const out = await h.ok(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${F}`, `dest-img-format=${to}`]);
    expect(imageOf(h, F, out).format).toBe(to);
    expect(await sha(h, F, out, SIZE)).toBe(WANT);
    expect(vdiUuids(h, L)).not.toContain(src);
    expect(await h.lvNames(L)).toEqual(['MGT']);
    // Staging (vhd <-> qcow2) went beside the file and is gone.
    expect(listing(h, F).filter((n) => n.includes('staging'))).toEqual([]);
    await h.ok(['vdi-destroy', `uuid=${out}`]);
  }, CASE_MS);
});

describe('vdi-pool-migrate lvm -> lvm (two SRs, two VGs)', () => {
  it.each([['vhd', 'qcow2'], ['qcow2', 'raw'], ['raw', 'vhd']] as const)('%s -> %s: same content, the source LV gone, no staging left', async (from, to) => {
    const src = await filledLvmVdi(h, L, from, SIZE, PIECES);
    const out = await h.ok(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${L2}`, `dest-img-format=${to}`]);
    const prefix = { vhd: 'VHD', qcow2: 'QCOW2', raw: 'LV' }[to];
    expect(await h.lvNames(L2)).toEqual(['MGT', `${prefix}-${out}`].sort());
    expect((await lvmSha(h, out, SIZE)).sha).toBe(WANT);
    expect(vdiUuids(h, L)).toEqual([]);
    expect(await h.lvNames(L)).toEqual(['MGT']);
    // vhd -> qcow2 between two block devices stages in SM_COPY_STAGING_DIR (the scratch dir here).
    expect(readdirSync(h.s.dir).filter((n) => n.includes('staging'))).toEqual([]);
    await h.ok(['vdi-destroy', `uuid=${out}`]);
  }, CASE_MS);
});

describe('a raw LV is a whole number of 4 MiB extents, longer than its VDI', () => {
  it.each(['qcow2', 'raw', 'vhd'] as const)('a 30 MiB raw VDI (32 MiB LV) -> %s file of 30 MiB: the VDI\'s bytes only', async (to) => {
    const size = 30 * MiB;
    const pieces: [number, Buffer][] = [[0, randomBytes(4096)], [size - 4096, randomBytes(4096)]];
    const src = await filledLvmVdi(h, L, 'raw', size, pieces);
    const out = await h.ok(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${F}`, `dest-img-format=${to}`]);
    expect(await sha(h, F, out, size)).toBe(expectedSha(size, pieces));
    expect(Number(withDb(h.s, (db) => db.getByUuid('VDI', out)!['virtual_size']))).toBe(size);
    expect(await h.lvNames(L)).toEqual(['MGT']);
    await h.ok(['vdi-destroy', `uuid=${out}`]);
  }, CASE_MS);
});

describe('refusals on LVM leave no LV behind and the source intact', () => {
  it('a VHD over 2040 GiB: VDI_TOO_LARGE before anything is created', async () => {
    // Sparse: a 2041 GiB qcow2 costs a few hundred KiB.
    const huge = await h.ok(['vdi-create', `sr-uuid=${F}`, 'name-label=huge', 'virtual-size=2041GiB', 'sm-config:image-format=qcow2']);
    const files = listing(h, F);
    const r = await h.run(['vdi-pool-migrate', `uuid=${huge}`, `sr-uuid=${L}`, 'dest-img-format=vhd']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Error code: VDI_TOO_LARGE/);
    expect(r.stderr).toContain(`VDI ${huge}: virtual size 2041 GiB`);
    expect(r.stderr).toContain('exceeds the vhd maximum of 2040 GiB (formats that can hold it: qcow2, raw)');
    expect(await h.lvNames(L)).toEqual(['MGT']);
    expect(vdiUuids(h, L)).toEqual([]);
    expect(listing(h, F)).toEqual(files);
    await h.ok(['vdi-destroy', `uuid=${huge}`]);
  }, CASE_MS);

  it('more than the VG can hold: the driver refuses the destination (SRNoSpace), the source stays, no LV left', async () => {
    const src = await filledVdi(h, F, 'raw', 1024 * MiB, [[0, Buffer.alloc(4096, 7)]]);
    const want = await sha(h, F, src, 1024 * MiB);
    const r = await h.run(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${L}`, 'dest-img-format=raw']);
    expect(r.exitCode, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toContain('SRNoSpace');
    expect(await h.lvNames(L)).toEqual(['MGT']);
    await h.ok(['sr-scan', `uuid=${L}`]);
    expect(vdiUuids(h, L)).toEqual([]);
    expect(vdiUuids(h, F)).toContain(src);
    expect(await sha(h, F, src, 1024 * MiB)).toBe(want);
    await h.ok(['vdi-destroy', `uuid=${src}`]);
  }, CASE_MS);
});

it('machine data moves with the VDI from a file SR to LVM and back, kept in LV tags on the way', async () => {
  const M = '{"qemu.machine-types":["q35"],"qemu.min-ram-MB":512}';
  const smOf = (u: string): Record<string, string> => withDb(h.s, (db) => db.getByUuid('VDI', u)!['sm_config'] as Record<string, string>);
  const src = await h.ok(['vdi-create', `sr-uuid=${F}`, 'name-label=meta', `virtual-size=${8 * MiB}`, 'sm-config:image-format=raw', `sm-config:image-meta=${M}`]);
  const onLvm = await h.ok(['vdi-pool-migrate', `uuid=${src}`, `sr-uuid=${L}`, 'dest-img-format=vhd']);
  expect(smOf(onLvm)['image-meta']).toBe(M);
  expect(smOf(onLvm)['image-meta-from']).toBe(onLvm);
  // The LVM driver reports it from the LV's tags, not from the record: a scan keeps it.
  await h.ok(['sr-scan', `uuid=${L}`]);
  expect(smOf(onLvm)['image-meta']).toBe(M);
  const back = await h.ok(['vdi-pool-migrate', `uuid=${onLvm}`, `sr-uuid=${F}`, 'dest-img-format=qcow2']);
  const { readEffective } = await import('../../src/sdk/image-meta/index.js');
  expect((await readEffective(imageOf(h, F, back))).text).toBe(M);
}, CASE_MS);
