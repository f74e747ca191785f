// Crash safety (resize, GC coalesce, leaf-coalesce): the FileSR process is killed
// (SIGKILL via SM_FIST=<point>) after each step, with the
// real tools doing the real work. The next call (an sr-scan) must finish the
// journal, and then every VDI reads back its data, no half-made VDI is visible
// (DB and directory agree, no temporary files or journals), and the VDI can be
// snapshotted again.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { FIST_POINTS } from '../../src/sdk/file-sr/fist.js';
import {
  assertBuilt, crash, createSr, createVdi, filesIn, MiB, ok, pattern, readVdi, scratch, smConfig, vdiRecord, vdisOfSr,
  writeVdi, expectConsistent, type Scratch,
} from './helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

const A = pattern(0x5a);
const B = pattern(0xa5);

describe.each(['vhd', 'qcow2'] as const)('crash during resize of a %s VDI', (format) => {
  it.each(['resize-journal', 'resize-done'])('killed at %s: old or new size, data intact', async (point) => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createVdi(s, sr, format, '4MiB');
    await writeVdi(s, v, 0, A);
    await crash(s!, ['vdi-resize', `uuid=${v}`, 'disk-size=10MiB'], point);
    await expectConsistent(s!, sr);
    const size = Number(vdiRecord(s, v)!['virtual_size']);
    expect([4 * MiB, 10 * MiB]).toContain(size);
    expect((await readVdi(s, v, 0, A.length)).equals(A)).toBe(true);
    await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=10MiB']);
    expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(10 * MiB);
    expect((await readVdi(s, v, 0, A.length)).equals(A)).toBe(true);
  });
});

describe.each(['vhd', 'qcow2'] as const)('crash during GC coalesce of a %s chain', (format) => {
  it.each(FIST_POINTS.filter((p) => p.startsWith('coalesce-')))('killed at %s: rolled forward, data intact', async (point) => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createVdi(s, sr, format, '4MiB');
    const parentOf = (u: string) => smConfig(vdiRecord(s!, u))['vhd-parent']!;
    await writeVdi(s, v, 0, A);
    const s1 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b1 = parentOf(v);
    await writeVdi(s, v, MiB, B);
    const s2 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b2 = parentOf(v);
    const s3 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    const b3 = parentOf(v);
    // V → B3 → B2 → B1. Without S2, B2 is a hidden node with one (hidden) child
    // whose parent still has S1; without S1 too, B2 is merged into B1.
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    expect(filesIn(s).some((f) => f.startsWith(b2))).toBe(true);
    await crash(s!, ['vdi-destroy', `uuid=${s1}`], point);
    await expectConsistent(s!, sr);
    expect(filesIn(s).sort()).toEqual([b1, b3, v, s3].map((u) => `${u}.${format}`).sort());
    expect(parentOf(b3)).toBe(b1);
    expect(parentOf(v)).toBe(b3);
    expect(vdiRecord(s, b2)).toBeUndefined();
    for (const u of [v, s3]) {
      expect((await readVdi(s, u, 0, A.length)).equals(A)).toBe(true);
      expect((await readVdi(s, u, MiB, B.length)).equals(B)).toBe(true);
    }
    // Without S3 the rest collapses into V alone.
    await ok(s, ['vdi-destroy', `uuid=${s3}`]);
    expect(filesIn(s)).toEqual([`${v}.${format}`]);
    expect((await readVdi(s, v, 0, A.length)).equals(A)).toBe(true);
    expect((await readVdi(s, v, MiB, B.length)).equals(B)).toBe(true);
  });
});

describe.each(['vhd', 'qcow2', 'raw'] as const)('crash during leaf-coalesce onto a %s base', (format) => {
  it.each(FIST_POINTS.filter((p) => p.startsWith('leaf-coalesce-')))('killed at %s: rolled forward, data intact', async (point) => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createVdi(s, sr, format, '4MiB');
    await writeVdi(s, v, 0, A);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    await writeVdi(s, v, MiB, B);
    await crash(s!, ['vdi-destroy', `uuid=${snap}`], point);
    await expectConsistent(s!, sr);
    expect(readdirSync(s.location).filter((f) => !f.startsWith('.'))).toEqual([`${v}.${format}`]);
    expect(vdisOfSr(s, sr).map((r) => r['uuid'])).toEqual([v]);
    expect(smConfig(vdiRecord(s, v))['vhd-parent']).toBeUndefined();
    expect(smConfig(vdiRecord(s, v))['image-format']).toBe(format);
    expect((await readVdi(s, v, 0, A.length)).equals(A)).toBe(true);
    expect((await readVdi(s, v, MiB, B.length)).equals(B)).toBe(true);
  });
});
