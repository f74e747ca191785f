// Refusals: each checked before anything is created on the destination (same
// VDI records, same files), with an error naming the VDI, the format and what
// is allowed; several problems reported together.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkMigration, MigrationRefused } from '../../src/toolstack/migrate/index.js';
import { Toolstack } from '../../src/toolstack/toolstack.js';
import { assertBuilt } from '../toolstack/helpers.js';
import { filledVdi, host, type Host, listing, vdiUuids } from './helpers.js';

let h: Host;
let A: string;
let B: string;
let PY: string;
let small: string;
let huge: string;

beforeAll(async () => {
  assertBuilt();
  h = host();
  A = await h.newFileSr('a');
  B = await h.newFileSr('b');
  PY = await h.ok(['sr-create', 'type=py', 'name-label=py', `device-config:location=${h.s.dir}/py`]);
  small = await filledVdi(h, A, 'qcow2', 8 * 1024 * 1024, [[0, Buffer.alloc(512, 1)]]);
  // Sparse: a 2041 GiB qcow2 costs a few hundred KiB.
  huge = await h.ok(['vdi-create', `sr-uuid=${A}`, 'name-label=huge', 'virtual-size=2041GiB', 'sm-config:image-format=qcow2']);
}, 600_000);

afterAll(() => h?.cleanup());

/** Runs a command that must be refused, and checks nothing changed on either SR. */
async function refused(args: string[]): Promise<string> {
  const vdis = vdiUuids(h);
  const files = [listing(h, A), listing(h, B)];
  const r = await h.run(args);
  expect(r.exitCode, r.stdout + r.stderr).toBe(1);
  expect(vdiUuids(h)).toEqual(vdis);
  expect([listing(h, A), listing(h, B)]).toEqual(files);
  return r.stderr;
}

it('a format the destination SR does not list: VDI_INCOMPATIBLE_TYPE naming the VDI, the format and the allowed ones', async () => {
  const err = await refused(['vdi-pool-migrate', `uuid=${small}`, `sr-uuid=${PY}`, 'dest-img-format=vhd']);
  expect(err).toMatch(/Error code: VDI_INCOMPATIBLE_TYPE/);
  expect(err).toContain(`VDI ${small}: image format vhd not found`);
  expect(err).toMatch(/allowed: raw, qcow2/);
  expect(err).toContain(`Image format vhd is not supported by ${PY}`);
});

it('an unknown format name is "not found"', async () => {
  const err = await refused(['vdi-copy', `uuid=${small}`, `sr-uuid=${B}`, 'dest-img-format=vmdk']);
  expect(err).toMatch(/image format 'vmdk' not found \(known formats: raw, vhd, qcow2\)/);
});

it('a VHD destination for a VDI over 2040 GiB: VDI_TOO_LARGE with the limit and the formats that fit', async () => {
  const err = await refused(['vdi-copy', `uuid=${huge}`, `sr-uuid=${B}`, 'dest-img-format=vhd']);
  expect(err).toMatch(/Error code: VDI_TOO_LARGE/);
  expect(err).toContain(`VDI ${huge}: virtual size 2041 GiB`);
  expect(err).toContain('exceeds the vhd maximum of 2040 GiB (formats that can hold it: qcow2, raw)');
});

it('an unknown destination SR', async () => {
  const sr = randomUUID();
  const err = await refused(['vdi-pool-migrate', `uuid=${small}`, `sr-uuid=${sr}`]);
  expect(err).toMatch(/Error code: UUID_INVALID/);
  expect(err).toContain(`VDI ${small}: destination SR ${sr} does not exist`);
});

it('a VDI in use (attached)', async () => {
  await h.ok(['vdi-attach', `uuid=${small}`]);
  try {
    const err = await refused(['vdi-pool-migrate', `uuid=${small}`, `sr-uuid=${B}`, 'dest-img-format=raw']);
    expect(err).toMatch(/Error code: VDI_IN_USE/);
    expect(err).toContain(`VDI ${small} is attached on this host`);
  } finally {
    await h.ok(['vdi-detach', `uuid=${small}`]);
  }
});

it('assert-can-migrate reports every problem at once, and vdis-migrate refuses the whole set', async () => {
  const ghost = randomUUID();
  const args = [`vdi:${small}=${PY}`, `image-format:${small}=vhd`, `vdi:${huge}=${B}`, `image-format:${huge}=vhd`, `vdi:${ghost}=${B}`];
  const err = await refused(['assert-can-migrate', ...args]);
  expect(err).toContain('cannot migrate (3 problems):');
  expect(err).toContain(`VDI ${small}: image format vhd not found`);
  expect(err).toContain(`VDI ${huge}: virtual size 2041 GiB`);
  expect(err).toContain(`VDI ${ghost}: no such VDI`);
  const err2 = await refused(['vdis-migrate', ...args]);
  expect(err2).toContain('cannot migrate (3 problems):');
  // A good set passes the check and changes nothing.
  const ok = await h.run(['assert-can-migrate', `vdi:${small}=${B}`, `image-format:${small}=vhd`]);
  expect(ok.exitCode, ok.stderr).toBe(0);
});

it('the same checks as a library call: MigrationRefused with one problem per VDI', async () => {
  const ts = Toolstack.open({ dbPath: h.s.db });
  try {
    const e = await checkMigration(ts, [
      { vdiUuid: small, srUuid: PY, format: 'vhd' },
      { vdiUuid: huge, srUuid: B, format: 'vhd' },
    ], 'migrate').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MigrationRefused);
    const problems = (e as MigrationRefused).problems;
    expect(problems.map((p) => p.code)).toEqual(['VDI_INCOMPATIBLE_TYPE', 'VDI_TOO_LARGE']);
    const plan = await checkMigration(ts, [{ vdiUuid: huge, srUuid: B, format: 'qcow2' }], 'copy');
    expect(plan.copies.map((c) => [String(c.vdi['uuid']), String(c.destSr['uuid']), c.format])).toEqual([[huge, B, 'qcow2']]);
  } finally {
    ts.close();
  }
});
