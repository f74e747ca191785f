// The planner and vdi-create's meta: map through a real `file` SR: the real
// smctl, the real FileSR executable and qemu-img/vhd-util underneath. The
// planner asks the driver (vdi_update) and reads sm_config image-meta /
// image-meta-from from the VDI record; it never opens the SR's files.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImportPlan } from '../../src/toolstack/import-plan/index.js';
import { assertBuilt, createSr, filesIn, ok, ROOT, scratch, smConfig, smctl, vdiRecord, vdisOfSr, type Scratch } from '../file-sr/helpers.js';

// The host may be loaded (parallel suites): each smctl call spawns node and a driver.
const SLOW = 300_000;

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

function smLog(s: Scratch): string {
  const f = s.env['SM_LOG_FILE']!;
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

async function plan(s: Scratch, vdis: string[]): Promise<{ exitCode: number; plan: ImportPlan; stderr: string }> {
  const r = await smctl(s, ['image-import-plan', `vdi-uuids=${vdis.join(',')}`, '--json']);
  return { exitCode: r.exitCode, plan: JSON.parse(r.stdout || 'null') as ImportPlan, stderr: r.stderr };
}

async function createWithMeta(s: Scratch, sr: string, format: string, label: string, meta: string[]): Promise<string> {
  const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=16MiB', `name-label=${label}`, `sm-config:image-format=${format}`, ...meta.map((m) => `meta:${m}`)]);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stderr).toBe(''); // no "driver did not keep it" warning
  return r.stdout.trim();
}

describe('file SR: vdi-create meta:, snapshot, image-import-plan vdi-uuids=', () => {
  it('plans an OS disk, its snapshot and a data disk, naming the VDI each value comes from', async () => {
    s = scratch();
    const sr = await createSr(s);
    const os = await createWithMeta(s, sr, 'qcow2', 'os', ['qemu.min-ram-MB=2048', 'qemu.machine-types=q35,pc', 'com.example.role=os']);
    // vdi-create passed the map as sm-config image-meta; its confirming vdi_update put the value on the record.
    expect(JSON.parse(smConfig(vdiRecord(s, os))['image-meta']!)).toEqual({ 'qemu.min-ram-MB': 2048, 'qemu.machine-types': ['q35', 'pc'], 'com.example.role': 'os' });
    expect(smConfig(vdiRecord(s, os))['image-meta-from']).toBe(os);
    // The driver got it as vdi_sm_config image-meta (SMlog records each call's parameters).
    const create = smLog(s).split('\n').find((l) => l.includes(' vdi_create {'))!;
    expect(JSON.parse(create.slice(create.indexOf('{')))['vdi_sm_config']).toEqual({
      'image-format': 'qcow2',
      'image-meta': '{"qemu.min-ram-MB":2048,"qemu.machine-types":["q35","pc"],"com.example.role":"os"}',
    });
    const snap = await ok(s, ['vdi-snapshot', `uuid=${os}`]);
    const data = await createWithMeta(s, sr, 'vhd', 'data', ['qemu.min-ram-MB=4096']);
    // After the snapshot, the OS disk and its snapshot are children of a hidden base that holds the value.
    const base = smConfig(vdiRecord(s, os))['vhd-parent']!;
    expect(base).toMatch(/^[0-9a-f-]{36}$/);
    expect(smConfig(vdiRecord(s, snap))['vhd-parent']).toBe(base);

    const r = await plan(s, [os, snap, data]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.plan.images).toEqual([
      { label: os, name: 'os', from: base, keys: ['qemu.min-ram-MB', 'qemu.machine-types', 'com.example.role'] },
      { label: snap, name: 'os', from: base, keys: ['qemu.min-ram-MB', 'qemu.machine-types', 'com.example.role'] },
      { label: data, name: 'data', from: data, keys: ['qemu.min-ram-MB'] },
    ]);
    const ram = r.plan.settings.find((x) => x.key === 'qemu.min-ram-MB')!;
    expect(ram).toMatchObject({ value: 4096, rule: 'maximum' });
    expect(ram.values).toEqual([
      { image: os, value: 2048, source: base },
      { image: snap, value: 2048, source: base },
      { image: data, value: 4096, source: data },
    ]);
    expect(r.plan.settings.find((x) => x.key === 'qemu.machine-types')).toMatchObject({ choice: 'q35', without: [data] });
    expect(r.plan.vendor.map((v) => [v.image, v.key, v.value, v.source])).toEqual([
      [os, 'com.example.role', 'os', base],
      [snap, 'com.example.role', 'os', base],
    ]);
    expect(r.plan.disagreements).toMatchObject([{ key: 'qemu.min-ram-MB', kind: 'differs', blocking: false }]);
    // The readable form names the VDIs and their names.
    const text = await smctl(s, ['image-import-plan', `vdi-uuids=${os},${data}`]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`  ${os} (os): 3 keys, inherited from ${base}\n  ${data} (data): 1 key\n`);
  }, SLOW);

  it('a value changed after the record was written is seen (the driver is asked again); disagreeing disks block', async () => {
    s = scratch();
    const sr = await createSr(s);
    const os = await createWithMeta(s, sr, 'qcow2', 'os', ['qemu.min-ram-MB=2048', 'qemu.machine-types=q35,pc', 'com.example.role=os']);
    const snap = await ok(s, ['vdi-snapshot', `uuid=${os}`]);
    const base = smConfig(vdiRecord(s, os))['vhd-parent']!;
    // Changed on the image itself (image-meta's VDI mode), so the DB record is stale until vdi_update.
    const im = await execa(process.execPath, [join(ROOT, 'bin', 'image-meta'), 'set', '--sr-path', s.location, '--vdi', os, 'qemu.arch=x86_64'], { reject: false });
    expect(im.exitCode, String(im.stderr)).toBe(0);
    const raw = await createWithMeta(s, sr, 'raw', 'arm', ['qemu.arch=aarch64']);
    const r2 = await plan(s, [os, snap, raw]);
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toContain('the import plan is blocked by 1 disagreement');
    expect(r2.plan.images[0]).toMatchObject({ label: os, from: os });
    expect(r2.plan.disagreements).toEqual([
      {
        key: 'qemu.arch',
        kind: 'conflict',
        blocking: true,
        message: expect.stringContaining('must agree'),
        values: [
          { image: os, value: 'x86_64', source: os },
          { image: raw, value: 'aarch64', source: raw },
        ],
      },
    ]);
    // The snapshot kept the value its source had when it was taken.
    expect(r2.plan.images[1]).toMatchObject({ label: snap, from: base, keys: ['qemu.min-ram-MB', 'qemu.machine-types', 'com.example.role'] });
  }, SLOW);

  it('refuses a bad meta key before any driver call, naming the key and the rule; nothing is created', async () => {
    s = scratch();
    const sr = await createSr(s);
    const before = filesIn(s);
    for (const [args, msg] of [
      [['meta:qemu.min-ram=5'], /^Error: meta:qemu\.min-ram=5 is refused: key "qemu\.min-ram" starts with "qemu\." but is not in the key registry/],
      [['meta:qemu.min-ram-MB=0'], /^Error: meta:qemu\.min-ram-MB=0 is refused: key "qemu\.min-ram-MB": the registry says its value is an integer >= 1, got number 0/],
      [['meta:role=os'], /^Error: meta:role=os is refused: key "role" is neither a registered "qemu\." key nor starts with a reverse-dotted vendor prefix/],
      [['meta:qemu.arch=x86_64', 'sm-config:image-meta={}'], /^Error: give the machine data either as meta:<key>=<value> or as sm-config:image-meta=<json>, not both/],
      [['sm-config:image-meta={"qemu.arch":'], /^Error: sm-config:image-meta=\{"qemu\.arch": is refused: invalid JSON at character/],
    ] as const) {
      const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=bad', ...args]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe('');
    }
    expect(vdisOfSr(s, sr)).toEqual([]);
    expect(filesIn(s)).toEqual(before);
    // The SM log shows no vdi_create was sent to the driver.
    expect(smLog(s)).not.toContain('vdi_create');
  }, SLOW);

  it('an unknown VDI is refused, naming it; a detached SR cannot be read behind the driver\'s back', async () => {
    s = scratch();
    const sr = await createSr(s);
    const os = await createWithMeta(s, sr, 'vhd', 'os', ['qemu.min-ram-MB=512']);
    const missing = '11111111-2222-3333-4444-555555555555';
    const updates = () => smLog(s!).split('\n').filter((l) => l.includes(' vdi_update {')).length;
    const before = updates();
    const r = await smctl(s, ['image-import-plan', `vdi-uuids=${os},${missing}`]);
    expect(updates()).toBe(before); // refused before the first driver call
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Error: no VDI with uuid ${missing}`);
    expect(r.stderr).toContain('Error code: UUID_INVALID');
    expect(r.stdout).toBe('');

    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    const d = await smctl(s, ['image-import-plan', `vdi-uuids=${os}`]);
    expect(d.exitCode).toBe(1);
    expect(d.stderr).toMatch(/not attached|SR_NOT_ATTACHED/i);
    await ok(s, ['pbd-plug', `uuid=${pbd}`]);
    const again = await plan(s, [os]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.plan.settings).toMatchObject([{ key: 'qemu.min-ram-MB', value: 512, values: [{ image: os, source: os }] }]);
  }, SLOW);
});
