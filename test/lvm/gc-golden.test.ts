// Golden argv of GC on an lvm SR (no device-mapper: LVM --driverloaded n, LVs
// reached through losetup): the exact LVM / vhd-util / qemu-img command lines
// of a coalesce run by vdi_delete and of a leaf-coalesce run by sm-gc's core
// (collectLvmGarbage), against test/lvm/fixtures/golden-argv-gc.yaml.
// Regenerate (then review by hand): LVM_GOLDEN_WRITE=1.
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DRIVER_INFO } from '../../drivers/lvm/info.js';
import { collectLvmGarbage } from '../../src/sdk/lvm-sr/gc.js';
import { lvmSrHandlers } from '../../src/sdk/lvm-sr/handlers.js';
import { readInventory } from '../../src/sdk/lvm-sr/inventory.js';
import { openMetadata } from '../../src/sdk/lvm-sr/metadata.js';
import { openLvmSr } from '../../src/sdk/lvm-sr/sr.js';
import { deviceMapperAvailable } from '../../src/sdk/tools/lvm.js';
import { scratch } from '../file-sr/helpers.js';
import { loopDevice } from '../ext/helpers.js';
import { useProcessEnv } from './helpers.js';
import { byUuid, startXapi } from './xapi.js';
import { argvNormaliser, recordSteps, type GoldenCase } from './golden.js';

vi.setConfig({ testTimeout: 400_000 });

const SR = '6c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'golden-argv-gc.yaml');
const MiB = 1024 * 1024;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('lvm GC: golden argv', () => {
  it.skipIf(deviceMapperAvailable())('coalesce (vdi_delete) and leaf-coalesce (sm-gc) of a VHD and a qcow2 chain match test/lvm/fixtures/golden-argv-gc.yaml', async () => {
    const loop = await loopDevice(320);
    cleanups.push(loop.cleanup);
    const sc = scratch();
    cleanups.push(sc.cleanup);
    cleanups.push(useProcessEnv(sc.env));
    const dev = loop.device;
    cleanups.push(async () => {
      await execa('vgremove', ['--devices', dev, '--driverloaded', 'n', '-f', `VG_XenStorage-${SR}`], { reject: false, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    });
    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev }, host_ref: 'OpaqueRef:h', args: [], raw: {}, session_ref: 'OpaqueRef:s' };
    const norm = argvNormaliser(dev, SR);
    const create = (u: string, format: string) => ({ ...base, command: 'vdi_create', vdi_uuid: u, vdi_sm_config: { 'image-format': format }, size: 8 * MiB, name_label: format, name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false });
    const vdiReq = (command: string, u: string, extra: object = {}) => ({ ...base, command, vdi_uuid: u, vdi_location: u, vdi_ref: byUuid(f, u)?.[0] ?? '', ...extra });
    const snapshot = async (u: string) => ((await h.vdi_snapshot!(vdiReq('vdi_snapshot', u, { driver_params: {} }) as never, f.ctx)) as { uuid: string }).uuid;
    const V = { vhd: 'cccccccc-0000-4000-8000-000000000001', qcow2: 'cccccccc-0000-4000-8000-000000000002' };

    // Unrecorded set-up: per format, V → B2 → B1 with S1 on B1; S2 (on B2) already deleted.
    await h.sr_create!({ ...base, command: 'sr_create', size: 0 } as never, f.ctx);
    await h.sr_attach!({ ...base, command: 'sr_attach' } as never, f.ctx);
    const s1: Record<string, string> = {};
    for (const format of ['vhd', 'qcow2'] as const) {
      await h.vdi_create!(create(V[format], format) as never, f.ctx);
      s1[format] = await snapshot(V[format]);
      const s2 = await snapshot(V[format]);
      await h.vdi_delete!(vdiReq('vdi_delete', s2) as never, f.ctx);
    }
    for (const u of [...Object.values(V), ...Object.values(s1)]) norm([u]);

    const sr = openLvmSr(SR, { device: dev });
    const steps: [string, () => Promise<unknown>][] = [
      ['vdi_delete vhd (coalesce)', () => h.vdi_delete!(vdiReq('vdi_delete', s1['vhd']!) as never, f.ctx) as Promise<unknown>],
      ['vdi_delete qcow2 (coalesce)', () => h.vdi_delete!(vdiReq('vdi_delete', s1['qcow2']!) as never, f.ctx) as Promise<unknown>],
      ['sm-gc (leaf-coalesce of both)', async () => {
        const inv = await readInventory(sr);
        const meta = await openMetadata(sr, () => undefined, inv.mgtExtents);
        const r = await collectLvmGarbage(sr, meta, {});
        expect(r.errors).toEqual([]);
        expect(r.leafCoalesced.map((x) => x.leaf).sort()).toEqual(Object.values(V).sort());
      }],
    ];
    const actual = await recordSteps(steps, norm);
    if (process.env['LVM_GOLDEN_WRITE'] === '1') {
      const yaml = [
        '# Golden command lines of GC on the lvm driver (test/lvm/gc-golden.test.ts), no device-mapper.',
        '# <DEV> the PV, <SR> the SR uuid, <Un> uuids (U1/U2 the vhd/qcow2 leaves, U3/U4 their S1 snapshots, then',
        '# in order of first appearance), <N> losetup offsets, <LOOP> the loop device, <VHD_UTIL> the vhd-util in use.',
        '# Reviewed by hand: a change here is a change in what the driver runs. Regenerate: LVM_GOLDEN_WRITE=1.',
        ...actual.flatMap((c) => [`- name: ${c.name}`, '  argv:', ...c.argv.map((a) => `    - ${JSON.stringify(a)}`)]),
        '',
      ].join('\n');
      writeFileSync(FIXTURE, yaml);
    }
    const golden = parse(readFileSync(FIXTURE, 'utf8')) as GoldenCase[];
    expect(actual).toEqual(golden);
    // The merges are the real tools' own: one vhd-util coalesce, one qemu-img commit -d per merge.
    const all = actual.flatMap((c) => c.argv);
    expect(all.filter((a) => a[0] === '<VHD_UTIL>' && a[1] === 'coalesce')).toHaveLength(2);
    expect(all.filter((a) => a[0] === 'qemu-img' && a[1] === 'commit' && a.includes('-d'))).toHaveLength(2);
  });
});
