// Layout compatibility with xapi's FileSR (chains made directly with vhd-util
// snapshot + set hidden are scanned into the right records), and bad input:
// missing or wrong locations, VDI names that try to leave the SR, images whose
// backing chain leaves it. Refusals change nothing on disk or in the DB.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { fileSrHandlers } from '../../src/sdk/file-sr/handlers.js';
import { FILE_SR } from '../../drivers/file/handlers.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import {
  assertBuilt, createSr, filesIn, MiB, ok, pattern, readVdi, scratch, smConfig, smctl, vdiRecord, vdisOfSr, withDb,
  writeVdi, type Scratch,
} from './helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

const U = (n: number) => `0000000${n}-aaaa-4bbb-8ccc-000000000000`;

describe('an SR laid out by xapi FileSR', () => {
  it('scans into the right parents, hidden flags and managed/read-only records', async () => {
    s = scratch();
    const sr = await createSr(s);
    const [base, leafA, leafC, orphan, raw, corrupt] = [1, 2, 3, 4, 5, 6].map(U) as [string, string, string, string, string, string];
    const p = (u: string, ext = 'vhd') => join(s!.location, `${u}.${ext}`);
    // What FileSR._snapshot leaves: B (hidden) with two children, made by vhd-util itself.
    await vhdUtil.create({ path: p(base), sizeMiB: 8 });
    const data = pattern(0x77);
    await writeVdi(s, base, 2 * MiB, data);
    await vhdUtil.snapshot({ path: p(leafA), parent: p(base) });
    await vhdUtil.snapshot({ path: p(leafC), parent: p(base) });
    await vhdUtil.set({ path: p(base), field: 'hidden', value: 1 });
    // A deleted VDI awaiting GC: a hidden leaf, never introduced.
    await vhdUtil.create({ path: p(orphan), sizeMiB: 2 });
    await vhdUtil.set({ path: p(orphan), field: 'hidden', value: 1 });
    writeFileSync(p(raw, 'raw'), Buffer.alloc(MiB));
    writeFileSync(p(corrupt), Buffer.alloc(4096, 0x42));
    writeFileSync(join(s.location, 'filelog.txt'), 'not a VDI\n');

    await ok(s, ['sr-scan', `uuid=${sr}`]);
    const byUuid = new Map(vdisOfSr(s, sr).map((r) => [String(r['uuid']), r]));
    expect([...byUuid.keys()].sort()).toEqual([base, leafA, leafC, raw].sort());
    for (const leaf of [leafA, leafC]) {
      const r = byUuid.get(leaf)!;
      expect(smConfig(r)).toMatchObject({ 'vhd-parent': base, 'image-format': 'vhd' });
      expect(r['managed']).toBe(true);
      expect(r['read_only']).toBe(false);
      expect(Number(r['virtual_size'])).toBe(8 * MiB);
    }
    const b = byUuid.get(base)!;
    expect(b['managed']).toBe(false);
    expect(b['read_only']).toBe(true);
    expect(smConfig(b)['vhd-parent']).toBeUndefined();
    expect(smConfig(byUuid.get(raw))['image-format']).toBe('raw');
    expect(readFileSync(s.env['SM_LOG_FILE']!, 'utf8')).toContain(`${corrupt}.vhd`);
    expect((await readVdi(s, leafA, 2 * MiB, data.length)).equals(data)).toBe(true);

    // A record made by an older driver (no image-format, no vhd-parent) is filled in by the next scan.
    withDb(s, (db) => db.set('VDI', db.getByUuid('VDI', leafC)!.ref, 'sm_config', { other: 'kept' }));
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(smConfig(vdiRecord(s, leafC))).toEqual({ other: 'kept', 'image-format': 'vhd', 'vhd-parent': base });

    // Detach and re-attach (bind mount again): same records; a snapshot of a leaf works on this layout.
    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`])).match(/uuid \( RO\)\s*: (\S+)/)![1]!;
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['pbd-plug', `uuid=${pbd}`]);
    expect(vdisOfSr(s, sr).length).toBe(4);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${leafA}`]);
    expect((await readVdi(s, snap, 2 * MiB, data.length)).equals(data)).toBe(true);
    expect(smConfig(vdiRecord(s, leafA))['vhd-parent']).not.toBe(base);
  });
});

describe('bad input', () => {
  it('sr-create without device-config:location names the key (ConfigLocationMissing, 94)', async () => {
    s = scratch();
    const r = await smctl(s, ['sr-create', 'type=file', 'name-label=x']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('device-config:location');
    expect(r.stderr).toMatch(/94/);
  });

  it('a location that is a file, or a non-empty directory, is refused and left as it was', async () => {
    s = scratch();
    mkdirSync(s.dir, { recursive: true });
    const file = join(s.dir, 'afile');
    writeFileSync(file, 'keep me\n');
    const r = await smctl(s, ['sr-create', 'type=file', `device-config:location=${file}`, 'name-label=x']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(`${file} is not a directory`);
    expect(readFileSync(file, 'utf8')).toBe('keep me\n');
    mkdirSync(s.location);
    writeFileSync(join(s.location, 'x'), 'y');
    const r2 = await smctl(s, ['sr-create', 'type=file', `device-config:location=${s.location}`, 'name-label=x']);
    expect(r2.exitCode).not.toBe(0);
    expect(r2.stderr).toMatch(/is not empty/);
    expect(filesIn(s)).toEqual(['x']);
    expect(withDb(s, (db) => db.all('SR').length)).toBe(0);
  });

  it('VDI locations that leave the SR are refused and nothing changes', async () => {
    s = scratch();
    const sr = await createSr(s);
    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=2MiB', 'name-label=v', 'sm-config:image-format=qcow2']);
    writeFileSync(join(s.dir, 'outside.vhd'), 'x');
    const files = filesIn(s);
    const db = vdisOfSr(s, sr);
    for (const loc of ['../outside', `../${v}`, '/etc/passwd', `${v}/../../x`]) {
      const r = await smctl(s, ['vdi-introduce', `sr-uuid=${sr}`, `location=${loc}`]);
      expect(r.exitCode, loc).not.toBe(0);
      expect(r.stderr).toContain(JSON.stringify(loc));
      expect(r.stderr).toMatch(/refused/);
    }
    expect(filesIn(s)).toEqual(files);
    expect(vdisOfSr(s, sr)).toEqual(db);

    // In-process: NUL bytes (which the XML wire cannot carry) and traversal, for every VDI command.
    const h = fileSrHandlers(FILE_SR);
    const ctx = {} as HandlerContext;
    const base = { host_ref: '', device_config: { location: s.location }, args: [], raw: {}, sr_ref: 'OpaqueRef:x', sr_uuid: sr, vdi_ref: '', vdi_uuid: v };
    for (const loc of [`${v}\0.qcow2`, '../../etc/shadow', '/etc/shadow']) {
      const calls: Array<() => unknown> = [
        () => h.vdi_delete!({ ...base, command: 'vdi_delete', vdi_location: loc }, ctx),
        () => h.vdi_snapshot!({ ...base, command: 'vdi_snapshot', vdi_location: loc, driver_params: {} }, ctx),
        () => h.vdi_resize!({ ...base, command: 'vdi_resize', vdi_location: loc, new_size: 4 * MiB }, ctx),
        () => h.vdi_attach!({ ...base, command: 'vdi_attach', vdi_location: loc, writable: true }, ctx),
      ];
      for (const call of calls) {
        const e = await Promise.resolve().then(async () => call()).then(() => null, (x: unknown) => x);
        expect(e).toBeInstanceOf(SRError);
        expect((e as SRError).key).toBe('BadRequest');
        expect((e as SRError).message).toContain(JSON.stringify(loc));
      }
    }
    expect(filesIn(s)).toEqual(files);
  });

  it('vdi-introduce refuses an image whose backing file is outside the SR, and an existing uuid', async () => {
    s = scratch();
    const sr = await createSr(s);
    const outside = join(s.dir, 'secret.qcow2');
    await qemuImg.create({ path: outside, format: 'qcow2', sizeBytes: MiB });
    const child = U(7);
    await qemuImg.create({ path: join(s.location, `${child}.qcow2`), format: 'qcow2', backing: { path: outside, format: 'qcow2' } });
    const r = await smctl(s, ['vdi-introduce', `sr-uuid=${sr}`, `uuid=${child}`, `location=${child}`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/outside the SR/);
    expect(vdisOfSr(s, sr)).toEqual([]);
    // A scan does not pick it up either.
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr)).toEqual([]);

    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=2MiB', 'name-label=v']);
    const again = await smctl(s, ['vdi-introduce', `sr-uuid=${sr}`, `uuid=${U(8)}`, `location=${v}`]);
    expect(again.exitCode).not.toBe(0);
    const same = await smctl(s, ['vdi-introduce', `sr-uuid=${sr}`, `uuid=${v}`, `location=${v}`]);
    expect(same.exitCode).not.toBe(0);
    expect(vdisOfSr(s, sr).length).toBe(1);
  });
});
