// The toolstack's building blocks: value syntaxes, argument parsing, the request
// xapi sends (golden), the runner's argv/env (golden, via a recording plug-in),
// driver-info parsing, the XenAPI endpoint, and PySR's request checks.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/smctl/args.js';
import { encodeMethodCall, encodeMethodCallXapiStyle, parseMethodResponse, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { StateDb } from '../../src/toolstack/db/state-db.js';
import { parseDriverInfo } from '../../src/toolstack/driver-info.js';
import { DriverFaultError, XenApiError } from '../../src/toolstack/errors.js';
import { discoverPlugins, type Plugin } from '../../src/toolstack/plugins.js';
import { buildRequest } from '../../src/toolstack/request.js';
import { runPlugin } from '../../src/toolstack/runner.js';
import { parseBool, parseSize } from '../../src/toolstack/sizes.js';
import { XenApiEndpoint } from '../../src/toolstack/xenapi/endpoint.js';
import { evalWhere, parseWhere } from '../../src/toolstack/xenapi/where-expr.js';
import { PY_DRIVER_DIR, ROOT } from './helpers.js';

describe('sizes and booleans (xe Record_util)', () => {
  it.each([
    ['0', 0n],
    ['512', 512n],
    ['1b', 1n],
    ['7bytes', 7n],
    ['10GiB', 10n << 30n],
    ['10 GiB', 10n << 30n],
    ['3k', 3072n],
    ['3KB', 3072n],
    ['2M', 2n << 20n],
    ['2mb', 2n << 20n],
    ['1T', 1n << 40n],
    ['1tib', 1n << 40n],
  ])('%s = %s bytes', (text, bytes) => expect(parseSize('virtual-size', text)).toBe(bytes));
  it.each(['', 'GiB', '1.5G', '-1', '10XB', '10 G B', '9999999999T'])('rejects %j', (text) =>
    expect(() => parseSize('virtual-size', text)).toThrow(/Failed to parse field 'virtual-size'/),
  );
  it('booleans as xe', () => {
    for (const t of ['true', 'T', 'yes', 'y', '1']) expect(parseBool('b', t)).toBe(true);
    for (const f of ['false', 'f', 'NO', 'n', '0']) expect(parseBool('b', f)).toBe(false);
    expect(() => parseBool('shared', 'maybe')).toThrow(/shared.*'maybe'/);
  });
});

describe('argument parsing', () => {
  it('splits params, maps, flags and global options', () => {
    const a = parseArgs(['--db', '/x.db', 'sr-create', 'type=ext', 'name-label=a=b', 'device-config:device=/dev/sdb', '--minimal', '--timeout=5']);
    expect(a.command).toBe('sr-create');
    expect([...a.params]).toEqual([['type', 'ext'], ['name-label', 'a=b']]);
    expect(a.maps.get('device-config')).toEqual({ device: '/dev/sdb' });
    expect([...a.flags]).toEqual(['--minimal']);
    expect(a.db).toBe('/x.db');
    expect(a.timeoutSeconds).toBe(5);
  });
  it('rejects malformed tokens', () => {
    expect(() => parseArgs(['x', 'novalue'])).toThrow(/bad parameter syntax 'novalue'/);
    expect(() => parseArgs(['x', ':k=v'])).toThrow(/non-empty key/);
    expect(() => parseArgs(['x', '--timeout', 'soon'])).toThrow(/--timeout must be a positive number/);
  });
});

describe('XenAPI query language', () => {
  it('field = value, and/or/not', () => {
    const rec: Record<string, string> = { SR: 'OpaqueRef:a', managed: 'true', location: 'x' };
    const f = (k: string) => rec[k];
    expect(evalWhere(parseWhere('field "SR" = "OpaqueRef:a"'), f)).toBe(true);
    expect(evalWhere(parseWhere('field "SR" = "OpaqueRef:b"'), f)).toBe(false);
    expect(evalWhere(parseWhere('field "SR" = "OpaqueRef:a" and field "managed" = "true"'), f)).toBe(true);
    expect(evalWhere(parseWhere('not (field "location" = "x") or field "managed" = "false"'), f)).toBe(false);
    expect(evalWhere(parseWhere('true'), f)).toBe(true);
    expect(() => parseWhere('field SR = 1')).toThrow();
  });
});

describe('the request xapi sends', () => {
  it('vdi_create: members, order and bare-string encoding match the golden file', () => {
    const req = buildRequest({
      command: 'vdi_create',
      hostRef: 'OpaqueRef:host-1',
      sessionRef: 'OpaqueRef:session-1',
      args: ['10737418240', 'disk & <name>', '', '', 'false', '19700101T00:00:00Z', '', 'false'],
      deviceConfig: { location: '/srv/sr' },
      sr: { ref: 'OpaqueRef:sr-1', uuid: '11111111-2222-3333-4444-555555555555' },
      vdiType: 'user',
      vdiSmConfig: { 'image-format': 'qcow2' },
    });
    const golden = readFileSync(join(import.meta.dirname, 'fixtures', 'vdi_create.request.xml'), 'utf8');
    expect(encodeMethodCallXapiStyle('vdi_create', [req])).toBe(golden);
  });
  it('VDI-scoped calls carry vdi_ref/location/uuid then on_boot/allow_caching; probe has no SR', () => {
    const v = buildRequest({
      command: 'vdi_snapshot',
      hostRef: 'h',
      sessionRef: 's',
      deviceConfig: {},
      sr: { ref: 'sr', uuid: 'u' },
      vdi: { ref: 'v', uuid: 'vu', location: 'vl', onBoot: 'persist', allowCaching: false },
      driverParams: { type: 'single' },
    });
    expect(Object.keys(v)).toEqual([
      'host_ref', 'command', 'args', 'device_config', 'session_ref', 'sr_ref', 'sr_uuid', 'vdi_ref', 'vdi_location',
      'vdi_uuid', 'driver_params', 'vdi_on_boot', 'vdi_allow_caching',
    ]);
    const p = buildRequest({ command: 'sr_probe', hostRef: 'h', sessionRef: 's', deviceConfig: { a: 'b' }, srSmConfig: {} });
    expect(Object.keys(p)).toEqual(['host_ref', 'command', 'args', 'device_config', 'session_ref', 'sr_sm_config']);
    const i = buildRequest({ command: 'sr_get_driver_info', hostRef: 'OpaqueRef:NULL', deviceConfig: { x: 'y' } });
    expect(i).toEqual({ host_ref: 'OpaqueRef:NULL', command: 'sr_get_driver_info', args: [], device_config: {} });
  });
});

describe('runner', () => {
  let dir: string;
  let rec: Plugin;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'smctl-runner-'));
    // Records exactly what it was run with, then answers nil.
    writeFileSync(
      join(dir, 'RecSR'),
      `#!/usr/bin/env python3
import json, os, sys
with open(os.environ['REC_OUT'], 'w') as f:
    json.dump({'argv': sys.argv[1:], 'originator': os.environ.get('ORIGINATOR'), 'url': os.environ.get('SM_XAPI_URL')}, f)
print("<?xml version='1.0'?>\\n<methodResponse>\\n<params>\\n<param>\\n<value><nil/></value></param>\\n</params>\\n</methodResponse>\\n")
`,
    );
    chmodSync(join(dir, 'RecSR'), 0o755);
    writeFileSync(join(dir, 'NotExecSR'), '#!/bin/sh\n');
    writeFileSync(join(dir, 'README'), 'not a plug-in');
    rec = discoverPlugins(dir).find((p) => p.type === 'rec')!;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('discovers executables named <Name>SR, type = lower-cased name', () => {
    expect(discoverPlugins(dir)).toEqual([{ type: 'rec', name: 'Rec', path: join(dir, 'RecSR') }]);
    const ours = discoverPlugins(join(ROOT, 'nonexistent'));
    expect(ours).toEqual([]);
  });

  it('runs the plug-in with exactly one argv (the golden request), ORIGINATOR=SM and SM_XAPI_URL', async () => {
    const db = StateDb.open(':memory:');
    const out = join(dir, 'rec.json');
    process.env['REC_OUT'] = out;
    try {
      const r = await runPlugin(
        rec,
        {
          command: 'vdi_create',
          hostRef: 'OpaqueRef:host-1',
          sessionRef: 'OpaqueRef:session-1',
          args: ['10737418240', 'disk & <name>', '', '', 'false', '19700101T00:00:00Z', '', 'false'],
          deviceConfig: { location: '/srv/sr' },
          sr: { ref: 'OpaqueRef:sr-1', uuid: '11111111-2222-3333-4444-555555555555' },
          vdiType: 'user',
          vdiSmConfig: { 'image-format': 'qcow2' },
        },
        { db },
      );
      expect(r.value).toBeNull();
      const got = JSON.parse(readFileSync(out, 'utf8')) as { argv: string[]; originator: string; url: string };
      expect(got.argv).toEqual([readFileSync(join(import.meta.dirname, 'fixtures', 'vdi_create.request.xml'), 'utf8')]);
      expect(got.originator).toBe('SM');
      expect(got.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    } finally {
      delete process.env['REC_OUT'];
      db.close();
    }
  });

  it('PySR (the oracle) rejects a request xapi would not send', async () => {
    const py = discoverPlugins(PY_DRIVER_DIR)[0]!;
    const db = StateDb.open(':memory:');
    try {
      // vdi_create without vdi_sm_config: DummySR's assertion fails -> BadRequest.
      const e = await runPlugin(
        py,
        { command: 'vdi_create', hostRef: 'h', args: ['1', 'n', '', '', 'false', '19700101T00:00:00Z', '', 'false'], deviceConfig: {}, sr: { ref: 'r', uuid: 'u' }, vdiType: 'user' },
        { db },
      ).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(DriverFaultError);
      expect((e as DriverFaultError).faultCode).toBe(143);
      expect((e as DriverFaultError).faultString).toMatch(/missing member vdi_sm_config/);
    } finally {
      db.close();
    }
    // Python-style <string> tags are not what xapi writes.
    const req = buildRequest({ command: 'sr_get_driver_info', hostRef: 'OpaqueRef:NULL' });
    const r = spawnSync(py.path, [encodeMethodCall('sr_get_driver_info', [req])], { encoding: 'utf8' });
    const resp = parseMethodResponse(r.stdout);
    expect(resp.kind === 'fault' && resp.fault.faultCode).toBe(143);
  });

  it('our own drivers answer an unimplemented command with fault 38 -> UNIMPLEMENTED_IN_SM_BACKEND', async () => {
    // vdi_resize_online: sm's base class leaves it Unimplemented for ext/file/lvm/nfs, and xapi never sends it.
    const ours = discoverPlugins();
    expect(ours.map((p) => p.type)).toEqual(['ext', 'file', 'lvm', 'nfs']);
    const db = StateDb.open(':memory:');
    process.env['SM_LOG_FILE'] = join(dir, 'SMlog');
    process.env['SM_LOCK_DIR'] = join(dir, 'lock');
    try {
      for (const plugin of ours) {
        const uuid = '11111111-2222-3333-4444-666666666666';
        const e = await runPlugin(
          plugin,
          {
            command: 'vdi_resize_online',
            args: ['1048576'],
            hostRef: db.localHost().ref,
            deviceConfig: {},
            sr: { ref: 'OpaqueRef:sr', uuid: '11111111-2222-3333-4444-555555555555' },
            vdi: { ref: 'OpaqueRef:vdi', uuid, location: uuid, onBoot: 'persist', allowCaching: false },
          },
          { db },
        ).catch((x: unknown) => x);
        expect(e, plugin.type).toBeInstanceOf(DriverFaultError);
        const f = e as DriverFaultError;
        expect([f.faultCode, f.faultName, f.code], plugin.type).toEqual([38, 'Unimplemented', 'UNIMPLEMENTED_IN_SM_BACKEND']);
        expect(f.message).toContain('fault 38 (Unimplemented)');
      }
    } finally {
      delete process.env['SM_LOG_FILE'];
      delete process.env['SM_LOCK_DIR'];
      db.close();
    }
  });
});

describe('driver info (xapi parse rules)', () => {
  const plugin: Plugin = { type: 't', name: 'T', path: '/x/TSR' };
  const base: Record<string, XmlRpcValue> = {
    name: 'n', description: 'd', vendor: 'v', copyright: 'c', driver_version: '1.0', required_api_version: '1.0',
    capabilities: ['VDI_CREATE', 'VDI_RESET_ON_BOOT/2', 'ATOMIC_PAUSE', 'SR_PROBE', 'VDI_CREATE', 'VDI_MIRROR/x'],
    configuration: [{ key: 'device', description: 'dev' }],
  };
  it('versions, unknown names dropped, duplicates collapsed, formats optional', () => {
    const i = parseDriverInfo(plugin, base);
    expect(i.features).toEqual({ SR_PROBE: 1, VDI_CREATE: 1, VDI_MIRROR: 1, VDI_RESET_ON_BOOT: 2 });
    expect(i.capabilities).toEqual(['SR_PROBE', 'VDI_CREATE', 'VDI_MIRROR', 'VDI_RESET_ON_BOOT']);
    expect(i.ignored).toEqual(['ATOMIC_PAUSE']);
    expect(i.configuration).toEqual({ device: 'dev' });
    expect(i.supported_image_formats).toEqual([]);
    expect(parseDriverInfo(plugin, { ...base, supported_image_formats: ['vhd', 'qcow2', 'vhd'] }).supported_image_formats).toEqual(['vhd', 'qcow2']);
  });
  it('rejects a missing member or an unknown format', () => {
    const { vendor: _v, ...noVendor } = base;
    expect(() => parseDriverInfo(plugin, noVendor)).toThrow(/member 'vendor': Invalid input/);
    expect(() => parseDriverInfo(plugin, { ...base, supported_image_formats: ['vmdk'] })).toThrow(/unknown image format 'vmdk'/);
  });
});

describe('XenAPI endpoint', () => {
  let db: StateDb;
  let ep: XenApiEndpoint;
  let session: string;
  let srRef: string;
  beforeAll(async () => {
    db = StateDb.open(':memory:');
    srRef = db.create('SR', { name_label: 'sr', type: 't' }).ref;
    ep = await XenApiEndpoint.start(db);
    session = ep.newSession();
  });
  afterAll(async () => {
    await ep.close();
    db.close();
  });
  const call = async (method: string, ...params: XmlRpcValue[]) => {
    const res = await fetch(ep.url, { method: 'POST', body: encodeMethodCall(method, params), headers: { 'Content-Type': 'text/xml' } });
    const r = parseMethodResponse(await res.text());
    if (r.kind !== 'result') throw new Error('fault');
    return r.value as { Status: string; Value?: XmlRpcValue; ErrorDescription?: string[] };
  };
  const introduceArgs = (uuid: string): XmlRpcValue[] => [
    uuid, 'label', 'desc', srRef, 'user', false, false, {}, uuid, {}, { 'image-format': 'raw' }, true, '1048576', '0',
    'OpaqueRef:NULL', false, '19700101T00:00:00Z', '', false,
  ];

  it('XenAPI error codes', async () => {
    expect(await call('VDI.get_all', 'OpaqueRef:bogus')).toEqual({ Status: 'Failure', ErrorDescription: ['SESSION_INVALID', 'OpaqueRef:bogus'] });
    expect((await call('VDI.frobnicate', session)).ErrorDescription).toEqual(['MESSAGE_METHOD_UNKNOWN', 'VDI.frobnicate']);
    expect((await call('VDI.get_record', session, 'OpaqueRef:nope')).ErrorDescription).toEqual(['HANDLE_INVALID', 'VDI', 'OpaqueRef:nope']);
    expect((await call('SR.get_by_uuid', session, 'nope')).ErrorDescription).toEqual(['UUID_INVALID', 'SR', 'nope']);
    expect((await call('VDI.db_introduce', session, ...introduceArgs('x').slice(1))).ErrorDescription).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH', 'VDI.db_introduce', '20', '19',
    ]);
    expect((await call('VDI.set_uuid', session, srRef, 'x')).ErrorDescription?.[0]).toBe('MESSAGE_METHOD_UNKNOWN');
  });

  it('db_introduce, queries, setters and map updates', async () => {
    const uuid = '0c6c5d8e-52ab-4e39-9d1b-6a8e8e7a0009';
    const intro = await call('VDI.db_introduce', session, ...introduceArgs(uuid));
    expect(intro.Status).toBe('Success');
    const ref = intro.Value as string;
    const where = await call('VDI.get_all_records_where', session, `field "SR" = "${srRef}"`);
    const recs = where.Value as Record<string, Record<string, XmlRpcValue>>;
    expect(Object.keys(recs)).toEqual([ref]);
    expect(recs[ref]!['virtual_size']).toBe('1048576');
    expect(recs[ref]!['managed']).toBe(true);
    expect(recs[ref]!['snapshot_time']).toBeInstanceOf(Date);
    expect((await call('VDI.get_by_uuid', session, uuid)).Value).toBe(ref);
    expect((await call('VDI.set_virtual_size', session, ref, '2097152')).Status).toBe('Success');
    expect(db.get('VDI', ref)!['virtual_size']).toBe(2097152);
    expect((await call('VDI.add_to_sm_config', session, ref, 'image-format', 'vhd')).ErrorDescription?.[0]).toBe('MAP_DUPLICATE_KEY');
    await call('VDI.remove_from_sm_config', session, ref, 'image-format');
    await call('VDI.add_to_sm_config', session, ref, 'image-format', 'vhd');
    expect((await call('VDI.get_sm_config', session, ref)).Value).toEqual({ 'image-format': 'vhd' });
    expect((await call('VDI.set_virtual_size', session, ref, 'big')).ErrorDescription).toEqual(['FIELD_TYPE_ERROR', 'virtual_size']);
    expect((await call('SR.set_physical_size', session, srRef, '1000')).Status).toBe('Success');
    expect(db.get('SR', srRef)!['physical_size']).toBe(1000);
    expect((await call('VDI.db_introduce', session, ...introduceArgs(uuid))).ErrorDescription?.[0]).toBe('DB_UNIQUENESS_CONSTRAINT_VIOLATION');
    const srWire = (await call('SR.get_record', session, srRef)).Value as Record<string, XmlRpcValue>;
    expect(srWire['VDIs']).toEqual([ref]);
    expect(srWire['physical_size']).toBe('1000');
    expect((await call('VDI.get_VBDs', session, ref)).Value).toEqual([]);
    const host = db.localHost().ref;
    const pbd = db.create('PBD', { host, SR: srRef, device_config: { location: '/x' } }).ref;
    const mine = await call('PBD.get_all_records_where', session, `field "host"="${host}" and field "SR"="${srRef}"`);
    expect(Object.keys(mine.Value as object)).toEqual([pbd]);
    expect((await call('VDI.db_forget', session, ref)).Status).toBe('Success');
    expect(db.get('VDI', ref)).toBeUndefined();
    expect((await call('message.create', session, 'M', '3', 'SR', 'u', 'body')).Status).toBe('Success');
    const login = await call('session.login_with_password', 'root', '');
    expect((await call('host.get_all', login.Value as string)).Value).toEqual([db.localHost().ref]);
  });

  it('wraps failures of our own code as XenAPI errors', () => {
    expect(new XenApiError('X', ['a']).message).toBe('X: a');
  });
});

describe('per-SR lock and database file', () => {
  it('a second holder waits for the first; a dead owner\'s lock is taken over', async () => {
    const { lockSr } = await import('../../src/toolstack/sr-lock.js');
    const dir = mkdtempSync(join(tmpdir(), 'smctl-lock-'));
    try {
      const first = await lockSr(dir, 'sr-a');
      let second = false;
      const waiting = lockSr(dir, 'sr-a').then((l) => {
        second = true;
        return l;
      });
      const other = await lockSr(dir, 'sr-b'); // another SR is not blocked
      other.release();
      await new Promise((r) => setTimeout(r, 200));
      expect(second).toBe(false);
      first.release();
      (await waiting).release();
      expect(second).toBe(true);
      writeFileSync(join(dir, 'sr-c.lock'), '999999999\n'); // no such process
      const taken = await lockSr(dir, 'sr-c', 1000);
      expect(readFileSync(join(dir, 'sr-c.lock'), 'utf8').trim()).toBe(String(process.pid));
      taken.release();
      writeFileSync(join(dir, 'sr-d.lock'), '1\n'); // init is alive: times out
      await expect(lockSr(dir, 'sr-d', 100)).rejects.toThrow(/SR sr-d is locked by process 1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the database is a WAL-mode SQLite file with a busy timeout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'smctl-db-'));
    try {
      const db = StateDb.open(join(dir, 'sub', 'state.db'));
      expect(db.sql.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(Number(db.sql.pragma('busy_timeout', { simple: true }))).toBeGreaterThanOrEqual(60_000);
      const tables = Object.keys(db.dump());
      expect(tables).toEqual(expect.arrayContaining(['sm', 'sr', 'pbd', 'vdi', 'host', 'message', 'vdi_attachment']));
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
