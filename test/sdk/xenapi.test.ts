// The XenAPI client against a small XML-RPC server started here, over TCP and
// over a Unix socket, and a driver's db_introduce callback end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { encodeFault, encodeMethodCall, encodeResponse, parseMethodCall, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { XenAPIFailure, XenAPIProtocolError, XenAPISession } from '../../src/sdk/xenapi/index.js';
import { ensureBuilt, pythonLoads, ROOT, SR_UUID, xapiParams } from './helpers.js';

interface Seen {
  method: string;
  params: XmlRpcValue[];
  headers: IncomingHttpHeaders;
}
const seen: Seen[] = [];
let reply: (method: string, params: XmlRpcValue[]) => { status: number; body: string } = () => ({
  status: 200,
  body: encodeResponse({ Status: 'Success', Value: '' }),
});

function xapiServer(): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = parseMethodCall(Buffer.concat(chunks).toString('utf8'));
      seen.push({ method: call.methodName, params: call.params, headers: req.headers });
      const r = reply(call.methodName, call.params);
      res.writeHead(r.status, { 'Content-Type': 'text/xml' });
      res.end(r.body);
    });
  });
}

let dir: string;
let tcp: Server;
let unix: Server;
let tcpUrl: string;
let unixUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sdk-xenapi-'));
  tcp = xapiServer();
  unix = xapiServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const sock = join(dir, 'xapi.sock');
  await new Promise<void>((r) => unix.listen(sock, r));
  const addr = tcp.address();
  tcpUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
  unixUrl = `unix:${sock}`;
  await ensureBuilt();
});
afterAll(async () => {
  await new Promise((r) => tcp.close(r));
  await new Promise((r) => unix.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const ok = (Value: XmlRpcValue) => ({ status: 200, body: encodeResponse({ Status: 'Success', Value }) });

describe('XenAPI session', () => {
  for (const transport of ['tcp', 'unix'] as const) {
    it(`calls methods with the session ref first and unwraps Success (${transport})`, async () => {
      seen.length = 0;
      reply = (m) => (m === 'VDI.get_by_uuid' ? ok('OpaqueRef:vdi1') : ok({ uuid: 'u', virtual_size: '1024' }));
      const s = new XenAPISession('OpaqueRef:session', { url: transport === 'tcp' ? tcpUrl : unixUrl, subtaskOf: 'OpaqueRef:task' });
      expect(await s.VDI.get_by_uuid('u')).toBe('OpaqueRef:vdi1');
      expect(await s.VDI.get_record('OpaqueRef:vdi1')).toEqual({ uuid: 'u', virtual_size: '1024' });
      expect(seen.map((x) => [x.method, x.params])).toEqual([
        ['VDI.get_by_uuid', ['OpaqueRef:session', 'u']],
        ['VDI.get_record', ['OpaqueRef:session', 'OpaqueRef:vdi1']],
      ]);
      expect(seen[0]!.headers['subtask-of']).toBe('OpaqueRef:task');
      expect(seen[0]!.headers['content-type']).toBe('text/xml');
    });
  }

  it('sends each typed helper with XenAPI wire types (int64 as decimal strings, maps as structs)', async () => {
    seen.length = 0;
    reply = (m) =>
      m.endsWith('get_sm_config') ? ok({ use_vhd: 'true' }) : m.endsWith('get_all_records_where') ? ok({ 'OpaqueRef:a': { uuid: 'a' } }) : m.endsWith('get_record') ? ok({ uuid: 'r' }) : ok('');
    const s = new XenAPISession('S', { url: tcpUrl });
    await s.VDI.db_forget('V');
    await s.VDI.set_virtual_size('V', 2 ** 40);
    await s.VDI.set_physical_utilisation('V', 4096n);
    await s.VDI.set_read_only('V', true);
    await s.VDI.set_managed('V', false);
    await s.VDI.set_sm_config('V', { 'image-format': 'qcow2' });
    await s.VDI.add_to_sm_config('V', 'vhd-parent', 'p');
    await s.VDI.remove_from_sm_config('V', 'paused');
    expect(await s.VDI.get_all_records_where('field "SR" = "R"')).toEqual({ 'OpaqueRef:a': { uuid: 'a' } });
    await s.SR.get_record('R');
    await s.SR.set_physical_size('R', 10);
    await s.SR.set_physical_utilisation('R', 5);
    await s.SR.set_virtual_allocation('R', 7);
    expect(await s.SR.get_sm_config('R')).toEqual({ use_vhd: 'true' });
    await s.SR.add_to_sm_config('R', 'k', 'v');
    expect(seen.map((x) => [x.method, ...x.params])).toEqual([
      ['VDI.db_forget', 'S', 'V'],
      ['VDI.set_virtual_size', 'S', 'V', '1099511627776'],
      ['VDI.set_physical_utilisation', 'S', 'V', '4096'],
      ['VDI.set_read_only', 'S', 'V', true],
      ['VDI.set_managed', 'S', 'V', false],
      ['VDI.set_sm_config', 'S', 'V', { 'image-format': 'qcow2' }],
      ['VDI.add_to_sm_config', 'S', 'V', 'vhd-parent', 'p'],
      ['VDI.remove_from_sm_config', 'S', 'V', 'paused'],
      ['VDI.get_all_records_where', 'S', 'field "SR" = "R"'],
      ['SR.get_record', 'S', 'R'],
      ['SR.set_physical_size', 'S', 'R', '10'],
      ['SR.set_physical_utilisation', 'S', 'R', '5'],
      ['SR.set_virtual_allocation', 'S', 'R', '7'],
      ['SR.get_sm_config', 'S', 'R'],
      ['SR.add_to_sm_config', 'S', 'R', 'k', 'v'],
    ]);
  });

  it('a Failure throws XenAPIFailure carrying ErrorDescription', async () => {
    reply = () => ({ status: 200, body: encodeResponse({ Status: 'Failure', ErrorDescription: ['UUID_INVALID', 'VDI', 'nope'] }) });
    const err = await new XenAPISession('S', { url: tcpUrl }).VDI.get_by_uuid('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenAPIFailure);
    expect((err as XenAPIFailure).description).toEqual(['UUID_INVALID', 'VDI', 'nope']);
  });

  it('transport problems throw XenAPIProtocolError: HTTP status, fault, garbage, no server', async () => {
    const s = new XenAPISession('S', { url: tcpUrl });
    reply = () => ({ status: 500, body: 'oops' });
    await expect(s.SR.get_record('R')).rejects.toThrow(/HTTP 500/);
    reply = () => ({ status: 200, body: encodeFault({ faultCode: 1, faultString: 'bad' }) });
    await expect(s.SR.get_record('R')).rejects.toThrow(/XML-RPC fault 1: bad/);
    reply = () => ({ status: 200, body: 'not xml' });
    await expect(s.SR.get_record('R')).rejects.toBeInstanceOf(XenAPIProtocolError);
    await expect(new XenAPISession('S', { url: `unix:${join(dir, 'absent.sock')}` }).SR.get_record('R')).rejects.toThrow(/absent\.sock.*ENOENT/);
  });

  it('a kept-alive connection the server dropped while idle: the call is sent again on a fresh one, once', async () => {
    // A raw server: answers the first request of a connection with keep-alive, and
    // drops the connection without answering when a second request arrives on it
    // (what a server closing an idle connection looks like to a loaded client).
    const requests: { conn: number; method: string }[] = [];
    let conns = 0;
    const server = createNetServer((sock) => {
      const conn = ++conns;
      let buf = '';
      let served = 0;
      sock.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        const head = buf.indexOf('\r\n\r\n');
        const len = Number(/content-length: *(\d+)/i.exec(buf)?.[1] ?? NaN);
        if (head < 0 || Buffer.byteLength(buf.slice(head + 4)) < len) return;
        const method = parseMethodCall(buf.slice(head + 4)).methodName;
        buf = '';
        requests.push({ conn, method });
        if (served++ > 0) return void sock.destroy();
        const body = encodeResponse({ Status: 'Success', Value: method });
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: keep-alive\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const s = new XenAPISession('S', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
      expect(await s.call('VDI.get_uuid', 'OpaqueRef:a')).toBe('VDI.get_uuid');
      expect(await s.call('SR.set_physical_size', 'OpaqueRef:b', '1')).toBe('SR.set_physical_size');
      expect(requests).toEqual([
        { conn: 1, method: 'VDI.get_uuid' },
        { conn: 1, method: 'SR.set_physical_size' },
        { conn: 2, method: 'SR.set_physical_size' },
      ]);
      // A connection that fails before any reuse is not retried: it is a real transport error.
      const dead = createNetServer((sock) => sock.on('data', () => sock.destroy()));
      await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
      try {
        await expect(new XenAPISession('S', { url: `http://127.0.0.1:${(dead.address() as AddressInfo).port}/` }).SR.get_record('R')).rejects.toThrow(/socket hang up/);
      } finally {
        dead.close();
      }
    } finally {
      server.close();
    }
  });
});

describe('a driver calling back into xapi', () => {
  it('vdi_create sends VDI.db_introduce with its 19 positional arguments, then answers {uuid, location}', async () => {
    seen.length = 0;
    reply = () => ok('OpaqueRef:new-vdi');
    const params: Record<string, unknown> = { ...xapiParams('vdi_create'), device_config: { xapi: 'true' } };
    const r = await execa('node', [join(ROOT, 'test/sdk/fixtures/test-driver.mjs'), encodeMethodCall('vdi_create', [params as XmlRpcValue])], {
      env: { SM_XAPI_URL: unixUrl, SM_LOG_FILE: join(dir, 'SMlog'), SM_LOCK_DIR: join(dir, 'lock') },
    });
    const decoded = (await pythonLoads(r.stdout)) as { params: Array<{ uuid: string; location: string }> };
    const uuid = decoded.params[0]!.uuid;
    expect(decoded.params[0]).toEqual({ uuid, location: uuid });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('VDI.db_introduce');
    expect(seen[0]!.headers['subtask-of']).toBe(params['subtask_of']);
    const [session, ...args] = seen[0]!.params;
    expect(session).toBe(params['session_ref']);
    expect(args).toEqual([
      uuid,
      '\u4e2d\u6587\u673a\u5668 0',
      'Created by template provisioner',
      params['sr_ref'],
      'system',
      false,
      false,
      {},
      uuid,
      {},
      { 'image-format': 'qcow2' },
      true,
      '10737418240',
      '0',
      '',
      false,
      new Date(Date.UTC(1970, 0, 1)),
      '',
      false,
    ]);
    expect(SR_UUID).toBe(params['sr_uuid']);
  });

  it('xapi unreachable: the command fails with APIProtocolError (154)', async () => {
    const params: Record<string, unknown> = { ...xapiParams('vdi_create'), device_config: { xapi: 'true' } };
    const r = await execa('node', [join(ROOT, 'test/sdk/fixtures/test-driver.mjs'), encodeMethodCall('vdi_create', [params as XmlRpcValue])], {
      env: { SM_XAPI_URL: `unix:${join(dir, 'absent.sock')}`, SM_LOG_FILE: join(dir, 'SMlog'), SM_LOCK_DIR: join(dir, 'lock') },
    });
    expect(await pythonLoads(r.stdout)).toMatchObject({ fault: { faultCode: 154 } });
  });
});
