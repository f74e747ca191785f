// Crash safety: the FileSR process is killed (SIGKILL via SM_FIST=<point>) after
// each step of snapshot, clone, resize, coalesce and leaf-coalesce, with the
// real tools doing the real work. The next call (an sr-scan) must finish the
// journal, and then every VDI reads back its data, no half-made VDI is visible
// (DB and directory agree, no temporary files or journals), and the VDI can be
// snapshotted again.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { FIST_POINTS } from '../../src/sdk/file-sr/fist.js';
import {
  assertBuilt, crash, createSr, createVdi, MiB, ok, pattern, readVdi, scratch, vdisOfSr,
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

const snapshotPoints = FIST_POINTS.filter((p) => p.startsWith('snapshot-'));

// Every point for vhd and raw (raw changes format on snapshot); for qcow2 the
// points where a tool writes an image (the other steps are format-independent).
const CASES: [ImageFormat, readonly string[]][] = [
  ['vhd', snapshotPoints],
  ['raw', snapshotPoints],
  ['qcow2', ['snapshot-link', 'snapshot-leaf', 'snapshot-clone', 'snapshot-hide']],
];

describe.each(CASES)('crash during snapshot/clone of a %s VDI', (format, points) => {
  it.each(points)('killed at %s: rolled back or forward, data intact', async (point) => {
    s = scratch();
    const sr = await createSr(s);
    const v = await createVdi(s, sr, format, '4MiB');
    await writeVdi(s, v, 0, A);
    await crash(s!, [point.length % 2 === 0 ? 'vdi-snapshot' : 'vdi-clone', `uuid=${v}`], point);
    await expectConsistent(s!, sr);
    // Only the source is a managed VDI: the half-made snapshot/clone is gone.
    const managed = vdisOfSr(s, sr).filter((r) => r['managed']);
    expect(managed.map((r) => r['uuid'])).toEqual([v]);
    expect((await readVdi(s, v, 0, A.length)).equals(A)).toBe(true);
    // Still fully usable: write, snapshot, read both.
    await writeVdi(s, v, MiB, B);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
    expect((await readVdi(s, snap, 0, A.length)).equals(A)).toBe(true);
    expect((await readVdi(s, snap, MiB, B.length)).equals(B)).toBe(true);
    expect((await readVdi(s, v, MiB, B.length)).equals(B)).toBe(true);
  });
});

