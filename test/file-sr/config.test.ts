// vdi_generate_config → vdi_attach_from_config (spec §5.2), the way static-vdis
// uses it without xapi: the generated methodCall is replayed as the FileSR
// executable's argv after the SR was detached, and attaches the SR again.
import { afterEach, beforeAll, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMethodCallXapiStyle, parseMethodCall, parseMethodResponse } from '../../src/sdk/protocol/xmlrpc.js';
import { assertBuilt, createSr, createVdi, ok, ROOT, scratch, type Scratch } from './helpers.js';

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

async function fileSR(xml: string): Promise<ReturnType<typeof parseMethodResponse>> {
  const env: Record<string, string | undefined> = { ...process.env, ...s!.env };
  delete env['SM_FIST'];
  const r = await execa(join(ROOT, 'drivers', 'file', 'FileSR'), [xml], { env, extendEnv: false });
  return parseMethodResponse(String(r.stdout));
}

it('generates a config that attaches the VDI without the toolstack, after the SR was detached', async () => {
  s = scratch();
  const sr = await createSr(s);
  const v = await createVdi(s, sr, 'qcow2', '2MiB');
  const req = {
    host_ref: 'OpaqueRef:h', command: 'vdi_generate_config', args: [], device_config: { location: s.location },
    session_ref: 'OpaqueRef:s', sr_ref: 'OpaqueRef:sr', sr_uuid: sr, vdi_ref: 'OpaqueRef:v', vdi_location: v, vdi_uuid: v,
  };
  const gen = await fileSR(encodeMethodCallXapiStyle('vdi_generate_config', [req]));
  expect(gen.kind).toBe('result');
  const config = (gen as { value: string }).value;
  const call = parseMethodCall(config);
  expect(call.methodName).toBe('vdi_attach_from_config');
  expect(call.params[0]).toEqual({ device_config: { location: s.location }, sr_uuid: sr, vdi_uuid: v, command: 'vdi_attach_from_config' });

  const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`])).match(/uuid \( RO\)\s*: (\S+)/)![1]!;
  await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
  expect(existsSync(join(s.mountRoot, sr))).toBe(false);
  const att = await fileSR(config);
  expect(att.kind).toBe('result');
  const r = (att as { value: Record<string, unknown> }).value;
  expect(r['params']).toBe(join(s.mountRoot, sr, `${v}.qcow2`));
  expect(r['params_nbd']).toBe('');
  expect(r['xenstore_data']).toMatchObject({ 'storage-type': 'ext', 'vdi-uuid': v, 'sm-datapath-format': 'qcow2' });
  expect(existsSync(join(s.mountRoot, sr, `${v}.qcow2`))).toBe(true);
});

it('bin/sm-gc collects and coalesces on demand; the next scan updates the records', async () => {
  s = scratch();
  const sr = await createSr(s);
  const v = await createVdi(s, sr, 'vhd', '4MiB');
  const { pattern, writeVdi, readVdi, filesIn, vdisOfSr } = await import('./helpers.js');
  const a = pattern(0x3c);
  await writeVdi(s, v, 0, a);
  const snap = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  // The snapshot's file disappears behind the toolstack's back: its base now has one child.
  const { rmSync } = await import('node:fs');
  rmSync(join(s.location, `${snap}.vhd`));
  const env: Record<string, string | undefined> = { ...process.env, ...s.env };
  const r = await execa(join(ROOT, 'bin', 'sm-gc'), [sr], { env, extendEnv: false, reject: false });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  expect(String(r.stdout)).toContain('leaf-coalesced 1');
  expect(filesIn(s)).toEqual([`${v}.vhd`]);
  expect((await readVdi(s, v, 0, a.length)).equals(a)).toBe(true);
  await ok(s, ['sr-scan', `uuid=${sr}`]);
  expect(vdisOfSr(s, sr).map((x) => x['uuid'])).toEqual([v]);
  const bad = await execa(join(ROOT, 'bin', 'sm-gc'), ['../etc'], { env, extendEnv: false, reject: false });
  expect(bad.exitCode).toBe(2);
  expect(String(bad.stderr)).toContain('"../etc"');
});
