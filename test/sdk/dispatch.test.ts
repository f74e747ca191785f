// The dispatch, end to end: a small test driver (fixtures/test-driver.mjs) run
// as a real process, its stdout decoded by Python's xmlrpc.client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMethodCall, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { ensureBuilt, pythonLoads, ROOT, SR_UUID, xapiParams } from './helpers.js';

const FIXTURE = join(ROOT, 'test/sdk/fixtures/test-driver.mjs');
let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'sdk-dispatch-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function env() {
  return { SM_LOG_FILE: join(dir, 'log', 'SMlog'), SM_LOCK_DIR: join(dir, 'lock') };
}

async function call(command: string, extra: Record<string, unknown> = {}) {
  const params = { ...xapiParams(command), ...extra };
  const r = await execa('node', [FIXTURE, encodeMethodCall(command, [params as XmlRpcValue])], { env: env(), reject: false });
  return { ...r, decoded: await pythonLoads(r.stdout) };
}

describe('results are encoded so Python decodes the expected value', () => {
  it('string (sr_probe), escaped', async () => {
    const r = await call('sr_probe');
    expect(r.exitCode).toBe(0);
    expect(r.decoded).toEqual({ params: ['<?xml version="1.0" ?>\n<SRlist>&</SRlist>'], method: null });
  });

  it('{uuid, location} (vdi_create), with the generated uuid', async () => {
    const r = await call('vdi_create');
    const v = (r.decoded as { params: Array<{ uuid: string; location: string }> }).params[0]!;
    expect(v.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(v).toEqual({ uuid: v.uuid, location: v.uuid });
  });

  it('the attach struct with xapi defaults filled in', async () => {
    const r = await call('vdi_attach');
    expect(r.decoded).toEqual({
      params: [
        {
          params_nbd: 'nbd:unix:/run/blktap-control/nbd/x:exportname=y',
          o_direct: true,
          o_direct_reason: '',
          xenstore_data: { 'storage-type': 'ext' },
        },
      ],
      method: null,
    });
  });

  it('nil for unit commands, byte for byte what sm prints', async () => {
    const r = await call('vdi_detach');
    expect(r.decoded).toEqual({ params: [null], method: null });
    expect(r.stdout + '\n').toBe("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n\n");
  });
});

describe('faults', () => {
  it('no handler: Unimplemented (38), exact bytes in the shape of sm test_SRCommand', async () => {
    const r = await execa('node', [FIXTURE, encodeMethodCall('vdi_delete', [xapiParams('vdi_delete') as XmlRpcValue])], {
      env: env(),
      stripFinalNewline: false,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n" +
        '<value><struct>\n<member>\n<name>faultCode</name>\n' +
        '<value><int>38</int></value>\n</member>\n<member>\n' +
        '<name>faultString</name>\n<value><string>The requested method is not supported/implemented ' +
        '[opterr=Test driver does not implement vdi_delete]</string></value>\n</member>\n' +
        '</struct></value>\n</fault>\n</methodResponse>\n\n',
    );
    expect(r.stderr).toBe('');
  });

  it('an SRError keeps its code and opterr', async () => {
    expect((await call('vdi_resize')).decoded).toEqual({ fault: { faultCode: 79, faultString: 'VDI Invalid size [opterr=too big]' } });
  });

  it('a tool failure maps by command (sr_attach → SMGeneral 202) naming argv, exit code and stderr', async () => {
    expect((await call('sr_attach')).decoded).toEqual({
      fault: {
        faultCode: 202,
        faultString: 'General backend error [opterr=Command lvs --noheadings VG_XenStorage-x failed (exit 5): Volume group "VG_XenStorage-x" not found]',
      },
    });
  });

  it('an unexpected error is 1200 with its message and no stack trace; the stack goes to the log', async () => {
    const r = await call('sr_detach');
    expect(r.decoded).toEqual({ fault: { faultCode: 1200, faultString: "Cannot read properties of undefined (reading 'missing')" } });
    expect(r.stdout).not.toContain('at ');
    expect(readFileSync(env().SM_LOG_FILE, 'utf8')).toMatch(/TypeError: Cannot read properties of undefined[^\n]*\n[^\n]*at /);
  });

  it('an error thrown outside the handler still ends in one fault and exit 0', async () => {
    const r = await call('sr_delete');
    expect(r.exitCode).toBe(0);
    expect(r.decoded).toEqual({ fault: { faultCode: 1200, faultString: 'thrown later, outside the handler' } });
  });

  it('a result of the wrong shape is reported as a driver bug', async () => {
    const r = await call('vdi_snapshot');
    expect(r.decoded).toMatchObject({ fault: { faultCode: 1200 } });
    expect((r.decoded as { fault: { faultString: string } }).fault.faultString).toMatch(/driver bug: vdi_snapshot returned .*expected \{uuid, location\}/);
  });

  it('built-in epoch answers: epoch_end nil, epoch_begin nil unless reset (then Unimplemented)', async () => {
    expect((await call('vdi_epoch_end')).decoded).toEqual({ params: [null], method: null });
    expect((await call('vdi_epoch_begin')).decoded).toEqual({ params: [null], method: null });
    expect((await call('vdi_epoch_begin', { vdi_on_boot: 'reset' })).decoded).toMatchObject({ fault: { faultCode: 38 } });
  });
});

describe('a launcher whose driver module fails to load', () => {
  it('still answers sr_get_driver_info, and other commands with fault 1200, exit 0', async () => {
    const broken = join(ROOT, 'test/sdk/fixtures/broken-driver.mjs');
    const info = await execa('node', [broken, encodeMethodCall('sr_get_driver_info', [xapiParams('sr_get_driver_info') as XmlRpcValue])], { env: env() });
    expect(await pythonLoads(info.stdout)).toMatchObject({ params: [{ name: 'Broken', capabilities: [], supported_image_formats: [] }] });
    const r = await execa('node', [broken, encodeMethodCall('sr_scan', [xapiParams('sr_scan') as XmlRpcValue])], { env: env(), reject: false });
    expect(r.exitCode).toBe(0);
    const d = (await pythonLoads(r.stdout)) as { fault: { faultCode: number; faultString: string } };
    expect(d.fault.faultCode).toBe(1200);
    expect(d.fault.faultString).toContain('no-such-driver-module.mjs');
  });
});

describe('stdout carries only the answer', () => {
  it('console output and stdout writes from a handler go to the log', async () => {
    const r = await call('sr_create');
    expect(r.stdout).toBe("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n");
    const log = readFileSync(env().SM_LOG_FILE, 'utf8');
    expect(log).toContain('stray console.log');
    expect(log).toContain('stray console.error');
    expect(log).toContain('stray stdout write');
  });

  it('logging failure does not break the call', async () => {
    const params = xapiParams('vdi_attach');
    const r = await execa('node', [FIXTURE, encodeMethodCall('vdi_attach', [params as XmlRpcValue])], {
      env: { ...env(), SM_LOG_FILE: '/proc/no/such/dir/SMlog' },
    });
    expect(r.exitCode).toBe(0);
    expect(await pythonLoads(r.stdout)).toMatchObject({ params: [{ params_nbd: expect.any(String) }] });
  });

  it('the log file directory is created; secrets and the session are not logged', async () => {
    const logFile = join(dir, 'fresh', 'deeper', 'SMlog');
    const params = { ...xapiParams('sr_probe'), device_config: { SRmaster: 'true', password: 'hunter2' } };
    await execa('node', [FIXTURE, encodeMethodCall('sr_probe', [params as XmlRpcValue])], { env: { ...env(), SM_LOG_FILE: logFile } });
    expect(existsSync(logFile)).toBe(true);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('sr_probe');
    expect(log).not.toContain('hunter2');
    expect(log).not.toContain(String(xapiParams('sr_probe')['session_ref']));
  });
});

describe('the SR lock of exclusive commands', () => {
  it('is held during the handler: lock file at <lockDir>/<sr_uuid>/sr', async () => {
    const marker = join(dir, 'm0');
    const r = await call('sr_scan', { device_config: { marker } });
    expect(r.decoded).toEqual({ params: [null], method: null });
    expect(readFileSync(marker, 'utf8')).toMatch(/^start \d+ locked\nend \d+\n$/);
    expect(existsSync(join(env().SM_LOCK_DIR, SR_UUID, 'sr'))).toBe(true);
  });
});
