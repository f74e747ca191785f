// Every pair of image formats between two file SRs through smctl, with the real
// tools: content compared after the copy (vdi-copy) and after the move
// (vdi-pool-migrate, with a snapshot moving along, converted too).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { assertBuilt } from '../toolstack/helpers.js';
import { filledVdi, host, type Host, imageOf, listing, sha, vdiUuids, withDb } from './helpers.js';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB;
// Each case is a few smctl runs; on a loaded 2-core machine one can take a minute.
const CASE_MS = 600_000;
const FORMATS: ImageFormat[] = ['vhd', 'qcow2', 'raw'];
// Data at the start, across a 2 MiB block boundary, and in the last block; the rest stays a hole.
const PIECES: [number, Buffer][] = [
  [0, randomBytes(4096)],
  [3 * MiB - 1000, randomBytes(5000)],
  [SIZE - 65536, randomBytes(65536)],
];

let h: Host;
let A: string;
let B: string;
const sources = new Map<ImageFormat, { uuid: string; sha: string }>();

beforeAll(async () => {
  assertBuilt();
  h = host();
  A = await h.newFileSr('a');
  B = await h.newFileSr('b');
  for (const f of FORMATS) {
    const uuid = await filledVdi(h, A, f, SIZE, PIECES);
    sources.set(f, { uuid, sha: await sha(h, A, uuid, SIZE) });
  }
}, CASE_MS);

afterAll(() => h?.cleanup());

describe.each(FORMATS)('vdi-copy from %s', (from) => {
  it.each(FORMATS)(`to %s: same content, source untouched, target sparse`, async (to) => {
    const src = sources.get(from)!;
    const out = await h.ok(['vdi-copy', `uuid=${src.uuid}`, `sr-uuid=${B}`, `dest-img-format=${to}`]);
    expect(out).toMatch(/^[0-9a-f-]{36}$/);
    const img = imageOf(h, B, out);
    expect(img.format).toBe(to);
    expect(await sha(h, B, out, SIZE)).toBe(src.sha);
    expect(await sha(h, A, src.uuid, SIZE)).toBe(src.sha);
    const rec = withDb(h.s, (db) => db.getByUuid('VDI', out)!);
    expect((rec['sm_config'] as Record<string, string>)['image-format']).toBe(to);
    expect(rec['name_label']).toBe(`${from}-src`);
    // Sparse: ~76 KiB of data in a 40 MiB disk; the copy allocates a few MiB at most (VHD blocks are 2 MiB).
    const { statSync } = await import('node:fs');
    expect(statSync(img.path).blocks * 512).toBeLessThan(8 * MiB);
    expect(listing(h, B).filter((n) => n.includes('staging'))).toEqual([]);
  }, CASE_MS);
});

describe('vdi-pool-migrate moves the VDI with its snapshot, both converted', () => {
  it.each(FORMATS.map((f, i) => [f, FORMATS[(i + 1) % 3]!] as const))('%s -> %s', async (from, to) => {
    const uuid = await filledVdi(h, A, from, SIZE, PIECES);
    const snap = await h.ok(['vdi-snapshot', `uuid=${uuid}`]);
    const { writeRange } = await import('../../src/sdk/formats/content.js');
    // The leaf moves on after the snapshot: the two must keep different content.
    await writeRange(imageOf(h, A, uuid), 8 * MiB, Buffer.alloc(4096, 0x5a));
    const leafSha = await sha(h, A, uuid, SIZE);
    const snapSha = await sha(h, A, snap, SIZE);
    expect(leafSha).not.toBe(snapSha);
    const before = vdiUuids(h, B);
    const out = await h.ok(['vdi-pool-migrate', `uuid=${uuid}`, `sr-uuid=${B}`, `dest-img-format=${to}`]);
    const added = vdiUuids(h, B).filter((u) => !before.includes(u));
    expect(added).toHaveLength(2);
    expect(added).toContain(out);
    const newSnap = added.find((u) => u !== out)!;
    expect(imageOf(h, B, out).format).toBe(to);
    expect(imageOf(h, B, newSnap).format).toBe(to);
    expect(await sha(h, B, out, SIZE)).toBe(leafSha);
    expect(await sha(h, B, newSnap, SIZE)).toBe(snapSha);
    withDb(h.s, (db) => {
      const leaf = db.getByUuid('VDI', out)!;
      const s = db.getByUuid('VDI', newSnap)!;
      expect(s['is_a_snapshot']).toBe(true);
      expect(s['snapshot_of']).toBe(leaf.ref);
      expect(db.getByUuid('VDI', uuid)).toBeUndefined();
      expect(db.getByUuid('VDI', snap)).toBeUndefined();
    });
    // The sources are gone from disk too (the hidden base with them, by the SR's GC).
    expect(listing(h, A).filter((n) => n.startsWith(uuid) || n.startsWith(snap))).toEqual([]);
  }, CASE_MS);
});

it('vdis-migrate moves several VDIs to different formats in one go', async () => {
  const x = await filledVdi(h, A, 'raw', SIZE, PIECES);
  const y = await filledVdi(h, A, 'qcow2', SIZE, PIECES);
  const want = await sha(h, A, x, SIZE);
  const out = await h.ok(['vdis-migrate', `vdi:${x}=${B}`, `vdi:${y}=${B}`, `image-format:${x}=vhd`]);
  const lines = out.split('\n').map((l) => l.split(' '));
  expect(lines.map((l) => l[0]).sort()).toEqual([x, y].sort());
  const nx = lines.find((l) => l[0] === x)![1]!;
  const ny = lines.find((l) => l[0] === y)![1]!;
  expect(imageOf(h, B, nx).format).toBe('vhd');
  // No format given: the destination driver chooses (the file SR's default).
  expect(['vhd', 'qcow2', 'raw']).toContain(imageOf(h, B, ny).format);
  expect(await sha(h, B, nx, SIZE)).toBe(want);
  expect(await sha(h, B, ny, SIZE)).toBe(want);
  expect(vdiUuids(h, A)).not.toContain(x);
}, CASE_MS);

it('machine data moves with the VDI: a value inherited from a snapshot base becomes the copy\'s own, in the new format', async () => {
  const M = '{"qemu.machine-types":["q35"],"qemu.min-ram-MB":2048}';
  const uuid = await h.ok(['vdi-create', `sr-uuid=${A}`, 'name-label=with-meta', `virtual-size=${8 * MiB}`, 'sm-config:image-format=vhd', `sm-config:image-meta=${M}`]);
  // After the snapshot the leaf has no value of its own: it reads its base's.
  const snap = await h.ok(['vdi-snapshot', `uuid=${uuid}`]);
  await h.ok(['sr-scan', `uuid=${A}`]);
  const smOf = (u: string): Record<string, string> => withDb(h.s, (db) => db.getByUuid('VDI', u)!['sm_config'] as Record<string, string>);
  expect(smOf(uuid)['image-meta']).toBe(M);
  expect(smOf(uuid)['image-meta-from']).not.toBe(uuid);

  const out = await h.ok(['vdi-pool-migrate', `uuid=${uuid}`, `sr-uuid=${B}`, 'dest-img-format=qcow2']);
  const { readEffective } = await import('../../src/sdk/image-meta/index.js');
  const eff = await readEffective(imageOf(h, B, out));
  expect(eff.text).toBe(M);
  expect(smOf(out)['image-meta']).toBe(M);
  expect(smOf(out)['image-meta-from']).toBe(out);
  // The snapshot moved too, with the value it had.
  const newSnap = withDb(h.s, (db) => String(db.where('VDI', 'snapshot_of', db.getByUuid('VDI', out)!.ref)[0]!['uuid']));
  expect((await readEffective(imageOf(h, B, newSnap))).text).toBe(M);
  expect(vdiUuids(h, A)).not.toContain(snap);
}, CASE_MS);
