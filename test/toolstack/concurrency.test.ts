// Two smctl commands on one SR at the same time: the toolstack serialises them
// (per-SR lock + one transaction per command) and the database stays consistent.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assertBuilt, ok, type Scratch, scratch, smctl, withDb } from './helpers.js';

let s: Scratch;
beforeAll(() => {
  assertBuilt();
  s = scratch();
});
afterAll(() => s?.cleanup());

it('concurrent vdi-create on one SR never overlap, and both VDIs are recorded', async () => {
  const sr = await ok(s, ['sr-create', 'type=py', 'name-label=busy', `device-config:location=${s.srDir}`]);
  const trace = join(s.dir, 'trace');
  const env = { PYSR_SLEEP: 'vdi_create:1.0', PYSR_TRACE: trace };
  const runs = await Promise.all(
    ['a', 'b', 'c'].map((n) => smctl(s, ['vdi-create', `sr-uuid=${sr}`, `name-label=${n}`, 'virtual-size=2MiB'], env)),
  );
  for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
  const intervals = readFileSync(trace, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[0] === 'vdi_create')
    .map((f) => [Number(f[1]), Number(f[2])] as const)
    .sort((x, y) => x[0] - y[0]);
  expect(intervals).toHaveLength(3);
  for (let i = 1; i < intervals.length; i++) expect(intervals[i]![0]).toBeGreaterThanOrEqual(intervals[i - 1]![1]);
  withDb(s, (db) => {
    const srRec = db.getByUuid('SR', sr)!;
    const vdis = db.where('VDI', 'SR', srRec.ref);
    expect(vdis.map((v) => v['name_label']).sort()).toEqual(['a', 'b', 'c']);
    expect(new Set(runs.map((r) => r.stdout.trim()))).toEqual(new Set(vdis.map((v) => String(v['uuid']))));
    // Each create added its size to the SR as the driver saw the others' files.
    expect(srRec['virtual_allocation']).toBe(3 * 2 * 1024 * 1024);
  });
});

it('a read-only listing is not blocked by a running command', async () => {
  const sr = withDb(s, (db) => String(db.all('SR')[0]!['uuid']));
  const slow = smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=slow', 'virtual-size=1M'], { PYSR_SLEEP: 'vdi_create:3' });
  await new Promise((r) => setTimeout(r, 1200));
  const t0 = Date.now();
  const list = await smctl(s, ['vdi-list', '--minimal']);
  expect(list.exitCode).toBe(0);
  expect(Date.now() - t0).toBeLessThan(2500);
  expect(list.stdout.split(',')).toHaveLength(3); // the slow one is not visible until it commits
  expect((await slow).exitCode).toBe(0);
});
