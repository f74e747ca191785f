// smctl with this package's own drivers (drivers/*/<X>SR, found without SM_DIR):
// sm-list shows what each declares, including supported-image-formats.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isStruct } from '../../src/sdk/protocol/xmlrpc.js';
import { discoverPlugins } from '../../src/toolstack/plugins.js';
import { runPlugin } from '../../src/toolstack/runner.js';
import { assertBuilt, ok, type Scratch, scratch, withDb } from './helpers.js';

let s: Scratch;
beforeAll(() => {
  assertBuilt();
  s = scratch({ smDir: null });
});
afterAll(() => s?.cleanup());

it('sm-list lists ext, file, lvm and nfs with the image formats each declares; --json agrees', async () => {
  const plugins = discoverPlugins();
  expect(plugins.map((p) => p.type)).toEqual(['ext', 'file', 'lvm', 'nfs']);
  const text = await ok(s, ['sm-list', 'params=all']);
  const json = JSON.parse(await ok(s, ['sm-list', '--json'])) as Record<string, Record<string, unknown>>;
  const records = text.trim().split('\n\n');
  expect(records).toHaveLength(4);
  for (const p of plugins) {
    const info = (await runPlugin(p, { command: 'sr_get_driver_info', hostRef: 'OpaqueRef:NULL' })).value;
    if (!isStruct(info)) throw new Error(`${p.type}: driver info is not a struct`);
    const declared = (info['supported_image_formats'] ?? []) as string[];
    const rec = records.find((r) => new RegExp(`^type \\( RO\\)\\s+: ${p.type}$`, 'm').test(r));
    expect(rec, `no sm-list record for ${p.type}`).toBeDefined();
    expect(rec).toMatch(new RegExp(`^supported-image-formats \\( RO\\)\\s+: ${declared.join(', ')}$`, 'm'));
    expect(rec).toMatch(new RegExp(`^name-label \\( RO\\)\\s+: ${String(info['name']).replace(/[()]/g, '\\$&')}$`, 'm'));
    expect(rec).toMatch(new RegExp(`^driver-filename \\( RO\\)\\s+: ${p.path}$`, 'm'));
    const j = Object.values(json).find((r) => r['type'] === p.type)!;
    expect(j['supported_image_formats']).toEqual(declared);
    expect(j['name_label']).toBe(info['name']);
  }
  // The records are cached in the database with stable refs across refreshes.
  const refs = withDb(s, (db) => db.all('SM').map((r) => r.ref));
  await ok(s, ['sm-list']);
  expect(withDb(s, (db) => db.all('SM').map((r) => r.ref))).toEqual(refs);
  expect(Object.keys(json).sort()).toEqual([...refs].sort());
});

it('a file SR life cycle through smctl with our FileSR (create, VDI create/snapshot/attach/destroy, unplug, destroy)', async () => {
  const env = { SM_SR_MOUNT_ROOT: join(s.dir, 'mnt') };
  const loc = join(s.dir, 'file-sr');
  try {
    const sr = await ok(s, ['sr-create', 'type=file', 'name-label=ours', `device-config:location=${loc}`], env);
    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=d', 'virtual-size=16MiB', 'sm-config:image-format=qcow2'], env);
    withDb(s, (db) => {
      const rec = db.getByUuid('VDI', v)!;
      expect(rec['virtual_size']).toBe(16 * 1024 * 1024);
      expect((rec['sm_config'] as Record<string, string>)['image-format']).toBe('qcow2');
    });
    const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`], env);
    withDb(s, (db) => {
      const rec = db.getByUuid('VDI', snap)!;
      expect(rec['is_a_snapshot']).toBe(true);
      expect(rec['snapshot_of']).toBe(db.getByUuid('VDI', v)!.ref);
    });
    const attach = await ok(s, ['vdi-attach', `uuid=${v}`], env);
    expect(attach).toMatch(/^params-nbd \( RO\)/m);
    await ok(s, ['vdi-detach', `uuid=${v}`], env);
    for (const u of [snap, v]) await ok(s, ['vdi-destroy', `uuid=${u}`], env);
    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal'], env);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`], env);
    await ok(s, ['sr-destroy', `uuid=${sr}`], env);
    withDb(s, (db) => expect(db.all('SR')).toHaveLength(0));
  } finally {
    // Whatever happened, leave no bind mount behind.
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
    for (const m of mounts.filter((m) => m.startsWith(join(s.dir, 'mnt')))) spawnSync('umount', ['-l', m]);
  }
});
