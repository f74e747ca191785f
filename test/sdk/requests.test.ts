import { describe, expect, it } from 'vitest';
import { COMMANDS, COMMAND_SPECS } from '../../src/sdk/protocol/commands.js';
import { parseRequest, readMethodCall } from '../../src/sdk/protocol/requests.js';

import { encodeMethodCall, encodeMethodCallXapiStyle, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { SRError } from '../../src/sdk/errors/index.js';
import { pythonDumps, pythonDumpsMany, xapiParams, SR_UUID, VDI_UUID } from './helpers.js';

const HANDLED = COMMANDS.filter((c) => c !== 'sr_get_driver_info');

function badRequestOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).code).toBe(143);
    return (e as SRError).faultString;
  }
  throw new Error('expected BadRequest');
}

function parseDoc(doc: string) {
  const call = readMethodCall([doc]);
  return parseRequest(call.methodName, call.params);
}

describe('requests as xapi sends them are accepted', () => {
  it('every command, encoded by Python xmlrpc.client', async () => {
    const docs = await pythonDumpsMany(HANDLED.map((command) => ({ method: command, params: [xapiParams(command)] })));
    for (const [i, command] of HANDLED.entries()) {
      const req = parseDoc(docs[i]!);
      expect(req.command).toBe(command);
      expect(req.device_config).toEqual(xapiParams(command)['device_config']);
    }
  });

  it('every command, encoded the way xapi writes strings (bare <value>text</value>, <value/>)', () => {
    for (const command of HANDLED) {
      const doc = encodeMethodCallXapiStyle(command, [xapiParams(command) as XmlRpcValue]);
      expect(doc).not.toContain('<string>');
      expect(parseDoc(doc).command).toBe(command);
    }
  });

  it('vdi_create: typed fields from args, wide characters intact (sm test_parse_handles_wide_chars)', async () => {
    const req = parseDoc(await pythonDumps('vdi_create', [xapiParams('vdi_create')]));
    expect(req).toMatchObject({
      command: 'vdi_create',
      sr_uuid: SR_UUID,
      size: 10737418240,
      name_label: '\u4e2d\u6587\u673a\u5668 0',
      name_description: 'Created by template provisioner',
      metadata_of_pool: '',
      is_a_snapshot: false,
      snapshot_time: '19700101T00:00:00Z',
      snapshot_of: '',
      read_only: false,
      vdi_type: 'system',
      vdi_sm_config: {},
    });
    // No vdi_uuid in the request: one is generated, as sm's uuidgen -r.
    expect((req as { vdi_uuid: string }).vdi_uuid).toMatch(/^[0-9a-f-]{36}$/);
    const withUuid = parseDoc(encodeMethodCall('vdi_create', [{ ...xapiParams('vdi_create'), vdi_uuid: VDI_UUID } as XmlRpcValue]));
    expect((withUuid as { vdi_uuid: string }).vdi_uuid).toBe(VDI_UUID);
  });

  it('typed args for attach, resize, sr_create, snapshot', () => {
    const p = (c: string, extra: Record<string, unknown> = {}) => parseDoc(encodeMethodCall(c, [{ ...xapiParams(c), ...extra } as XmlRpcValue]));
    expect(p('vdi_attach')).toMatchObject({ writable: true, vdi_uuid: VDI_UUID, vdi_on_boot: 'persist', vdi_allow_caching: false });
    expect(p('vdi_activate', { args: ['false'] })).toMatchObject({ writable: false });
    expect(p('vdi_resize')).toMatchObject({ new_size: 21474836480 });
    expect(p('sr_create', { args: ['1048576'] })).toMatchObject({ size: 1048576 });
    expect(p('vdi_snapshot', { driver_params: { type: 'single' } })).toMatchObject({ driver_params: { type: 'single' } });
  });
});

describe('malformed requests are BadRequest (143) naming the member', () => {
  it('each required member of each command (spec §1.3 table), removed', () => {
    for (const command of HANDLED) {
      for (const member of COMMAND_SPECS[command].required) {
        const params = { ...xapiParams(command) };
        delete params[member];
        const text = badRequestOf(() => parseDoc(encodeMethodCall(command, [params as XmlRpcValue])));
        expect(text, `${command} without ${member}`).toContain(`'${member}'`);
      }
    }
  });

  it('the DummySR oracle members are all required', () => {
    const oracle: Record<string, string[]> = {
      sr_create: ['sr_uuid', 'args', 'host_ref', 'session_ref', 'device_config', 'command', 'sr_ref'],
      sr_probe: ['args', 'host_ref', 'session_ref', 'device_config', 'command'],
      vdi_create: ['sr_uuid', 'args', 'host_ref', 'device_config', 'command', 'sr_ref', 'vdi_sm_config'],
      vdi_delete: ['sr_uuid', 'args', 'host_ref', 'device_config', 'command', 'sr_ref', 'vdi_ref', 'vdi_location', 'vdi_uuid'],
      vdi_introduce: ['sr_uuid', 'args', 'host_ref', 'device_config', 'command', 'sr_ref', 'vdi_sm_config', 'new_uuid'],
      vdi_snapshot: ['sr_uuid', 'args', 'host_ref', 'device_config', 'command', 'sr_ref'],
    };
    for (const [c, members] of Object.entries(oracle)) for (const m of members) expect(COMMAND_SPECS[c as 'sr_create'].required).toContain(m);
  });

  it('mistyped members', () => {
    const bad = (c: string, extra: Record<string, unknown>) => badRequestOf(() => parseDoc(encodeMethodCall(c, [{ ...xapiParams(c), ...extra } as XmlRpcValue])));
    expect(bad('sr_scan', { args: 'none' })).toMatch(/member 'args' .*expected array/);
    expect(bad('sr_scan', { device_config: { SRmaster: 1 } })).toMatch(/member 'device_config.SRmaster' .*expected string/);
    expect(bad('sr_scan', { sr_uuid: '../../etc' })).toMatch(/member 'sr_uuid' must be a UUID/);
    expect(bad('sr_scan', { session_ref: 7 })).toMatch(/member 'session_ref'/);
    expect(bad('sr_scan', { args: ['x'] })).toMatch(/member 'args' of sr_scan must hold 0 string\(s\), got 1/);
    expect(bad('sr_create', { args: [] })).toMatch(/must hold 1 string\(s\), got 0/);
    expect(bad('sr_create', { args: ['ten'] })).toMatch(/member 'args\[0\]' \(size\) of sr_create must be a non-negative decimal integer, got "ten"/);
    expect(bad('vdi_attach', { args: ['yes'] })).toMatch(/'args\[0\]' \(writable\) of vdi_attach must be "true" or "false"/);
    expect(bad('vdi_create', { args: ['1', 'a', 'b', '', 'maybe', '', '', 'false'] })).toMatch(/'args\[4\]' \(is_a_snapshot\)/);
    expect(bad('vdi_create', { vdi_sm_config: { type: 5 } })).toMatch(/'vdi_sm_config.type'/);
    expect(bad('vdi_attach', { vdi_on_boot: 'sometimes' })).toMatch(/'vdi_on_boot'/);
    expect(bad('sr_scan', { command: 'sr_attach' })).toMatch(/member 'command' is "sr_attach" but the method is sr_scan/);
  });

  it('unknown commands, bad envelopes', () => {
    expect(badRequestOf(() => parseDoc(encodeMethodCall('vdi_revert', [{ ...xapiParams('vdi_delete'), command: 'vdi_revert' } as XmlRpcValue])))).toMatch(/unknown command "vdi_revert"/);
    expect(badRequestOf(() => readMethodCall([]))).toMatch(/exactly one argument .* got 0/);
    expect(badRequestOf(() => readMethodCall(['a', 'b']))).toMatch(/got 2/);
    expect(badRequestOf(() => readMethodCall(['not xml']))).toMatch(/not well-formed XML/);
    expect(badRequestOf(() => readMethodCall(['<methodResponse/>']))).toMatch(/not <methodCall>/);
    expect(badRequestOf(() => readMethodCall([encodeMethodCall('sr_scan', [])]))).toMatch(/exactly one param .* got 0/);
    expect(badRequestOf(() => readMethodCall([encodeMethodCall('sr_scan', ['x'])]))).toMatch(/must be a struct/);
    expect(badRequestOf(() => readMethodCall([encodeMethodCall('sr_scan', [{ command: 'sr_scan' }])]))).toMatch(/missing member 'device_config'/);
    expect(badRequestOf(() => readMethodCall([encodeMethodCall('sr_scan', [{ device_config: 'x' }])]))).toMatch(/'device_config' must be a struct/);
  });
});
