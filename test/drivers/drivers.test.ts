// The four driver executables as xapi runs them: the compiled launchers in
// drivers/<x>/<X>SR, their answers decoded by Python's xmlrpc.client.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { driverInfoResponse, defineDriverInfo } from '../../src/driver-info.js';
import { checkDriver, defineDriver, implementedCommands } from '../../src/sdk/driver.js';
import { COMMANDS } from '../../src/sdk/protocol/commands.js';
import { DriverInfoResponseSchema } from '../../src/sdk/protocol/driver-info-schema.js';
import { encodeMethodCall, encodeMethodCallXapiStyle, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { driver as fileDriver } from '../../drivers/file/main.js';
import { driver as extDriver } from '../../drivers/ext/main.js';
import { driver as lvmDriver } from '../../drivers/lvm/main.js';
import { driver as nfsDriver } from '../../drivers/nfs/main.js';
import { DRIVERS, ensureBuilt, pythonDumps, pythonLoads, pythonLoadsMany, xapiParams, type PyDecoded } from '../sdk/helpers.js';

const SOURCES = { file: fileDriver, ext: extDriver, lvm: lvmDriver, nfs: nfsDriver } as const;
const logDir = mkdtempSync(join(tmpdir(), 'drivers-log-'));
const ENV = { SM_LOG_FILE: join(logDir, 'SMlog'), SM_LOCK_DIR: join(logDir, 'lock') };

beforeAll(async () => {
  await ensureBuilt();
});

function run(exe: string, args: string[]) {
  return execa(exe, args, { env: ENV, reject: false, stripFinalNewline: false });
}

/** Runs `jobs` with at most `n` at a time. */
async function pool<T>(n: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

/** The answer is exactly one methodResponse document (plus print()'s newline), exit 0. */
function expectOneDocument(r: { stdout: string; exitCode?: number }): void {
  expect(r.exitCode).toBe(0);
  expect(r.stdout.startsWith("<?xml version='1.0'?>\n<methodResponse>\n")).toBe(true);
  expect(r.stdout.endsWith('</methodResponse>\n\n')).toBe(true);
  expect(r.stdout.indexOf('<methodResponse>')).toBe(r.stdout.lastIndexOf('<methodResponse>'));
}

describe.each(DRIVERS)('$type driver ($exe)', ({ type, exe }) => {
  const source = SOURCES[type];

  it('answers sr_get_driver_info with its DRIVER_INFO (request encoded by Python and xapi-style)', async () => {
    const expected = driverInfoResponse(source.info);
    for (const doc of [
      await pythonDumps('sr_get_driver_info', [xapiParams('sr_get_driver_info')]),
      encodeMethodCallXapiStyle('sr_get_driver_info', [xapiParams('sr_get_driver_info') as XmlRpcValue]),
    ]) {
      const r = await run(exe, [doc]);
      expectOneDocument(r);
      const decoded = (await pythonLoads(r.stdout)) as { params: unknown[] };
      expect(decoded.params).toEqual([expected]);
      expect(DriverInfoResponseSchema.parse(decoded.params[0])).toBeTruthy();
    }
    expect(expected.supported_image_formats).toEqual(['vhd', 'qcow2', 'raw']);
    expect(source.info.default_image_format).toBe('vhd');
    expect(expected.configuration.map((c) => c.key)).toContain('preferred-image-formats');
    expect(`${expected.name} ${expected.description}`).toMatch(/VHD/);
    expect(`${expected.name} ${expected.description}`).toMatch(/QCOW2/);
    expect(`${expected.name} ${expected.description}`).toMatch(/raw/);
  });

  it('declares only capabilities it implements (capability/handler check passes)', async () => {
    expect(await checkDriver(source)).toEqual([]);
  });

  it('answers every known command it has no handler for Unimplemented (38)', async () => {
    const implemented = new Set<string>(await implementedCommands(source));
    const commands = COMMANDS.filter((c) => c !== 'sr_get_driver_info' && c !== 'vdi_epoch_begin' && c !== 'vdi_epoch_end' && !implemented.has(c));
    if (commands.length === 0) return;
    const results = await pool(
      4,
      commands.map((c) => () => run(exe, [encodeMethodCall(c, [xapiParams(c) as XmlRpcValue])])),
    );
    results.forEach(expectOneDocument);
    const decoded = await pythonLoadsMany(results.map((r) => r.stdout));
    decoded.forEach((d, i) =>
      expect(d, commands[i]).toEqual({
        fault: { faultCode: 38, faultString: `The requested method is not supported/implemented [opterr=${source.info.name} does not implement ${commands[i]}]` },
      }),
    );
  });

  it('answers bad input with a well-formed BadRequest fault on stdout, exit 0', async () => {
    // One byte per character (1..127): argv strings are byte-limited and cannot hold NUL.
    const garbage = (n: number) => Array.from(randomBytes(n), (b) => String.fromCharCode((b % 127) + 1)).join('');
    const struct = (extra: Record<string, unknown>) => encodeMethodCall('sr_scan', [{ ...xapiParams('sr_scan'), ...extra } as XmlRpcValue]);
    const cases: Array<[string, string[]]> = [
      ['not XML', ['this is not XML']],
      ['XML that is not a methodCall', ["<?xml version='1.0'?><methodResponse><params/></methodResponse>"]],
      ['no params', ["<?xml version='1.0'?><methodCall><methodName>sr_scan</methodName></methodCall>"]],
      ['params not a struct', [encodeMethodCall('sr_scan', [['device_config']])]],
      ['no device_config', [encodeMethodCall('sr_scan', [{ command: 'sr_scan', args: [] }])]],
      ['a missing member', [encodeMethodCall('sr_scan', [Object.fromEntries(Object.entries(xapiParams('sr_scan')).filter(([k]) => k !== 'sr_uuid')) as XmlRpcValue])]],
      ['unknown command', [encodeMethodCall('sr_teleport', [{ ...xapiParams('sr_scan'), command: 'sr_teleport' } as XmlRpcValue])]],
      ['two argv arguments', [struct({}), struct({})]],
      ['zero argv arguments', []],
      // Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN): the largest single argument, then 1 MiB over 8.
      ['128 KiB of garbage', [garbage(128 * 1024 - 1)]],
      ['1 MiB of garbage in 8 arguments', Array.from({ length: 8 }, () => garbage(128 * 1024 - 1))],
    ];
    const results = await pool(4, cases.map(([, args]) => () => run(exe, args)));
    results.forEach(expectOneDocument);
    const decoded: PyDecoded[] = await pythonLoadsMany(results.map((r) => r.stdout));
    decoded.forEach((d, i) => {
      expect(d, cases[i]![0]).toMatchObject({ fault: { faultCode: 143 } });
      expect((d as { fault: { faultString: string } }).fault.faultString, cases[i]![0]).toMatch(/^Failed to parse the request( \[opterr=.+\])?$/s);
    });
    expect((decoded[5] as { fault: { faultString: string } }).fault.faultString).toContain("missing member 'sr_uuid'");
    expect((decoded[6] as { fault: { faultString: string } }).fault.faultString).toContain('unknown command "sr_teleport"');
  });
});

describe('the capability/handler check', () => {
  const info = (capabilities: string[]) =>
    defineDriverInfo({
      name: 'x',
      description: 'x',
      vendor: 'x',
      copyright: 'x',
      driver_version: '1',
      required_api_version: '1.0',
      capabilities,
      configuration: [],
    });

  it('fails for a declared capability without a handler and a handler without its capability', async () => {
    const inconsistent = defineDriver({
      info: info(['VDI_CREATE', 'SR_PROBE']),
      handlers: { sr_probe: () => '<SRlist/>', vdi_snapshot: () => ({ uuid: 'a', location: 'a' }) },
    });
    expect(await checkDriver(inconsistent)).toEqual([
      'capability VDI_CREATE is declared but command vdi_create has no handler',
      'command vdi_snapshot has a handler but capability VDI_SNAPSHOT is not declared',
    ]);
  });

  it('ATOMIC_PAUSE needs activate/deactivate; VDI_RESET_ON_BOOT needs /2; SR lifecycle needs no capability', async () => {
    const d = defineDriver({
      info: info(['ATOMIC_PAUSE', 'VDI_RESET_ON_BOOT', 'THIN_PROVISIONING']),
      handlers: { sr_create: () => undefined, vdi_epoch_begin: () => undefined },
    });
    expect(await checkDriver(d)).toEqual([
      'capability ATOMIC_PAUSE is declared but command vdi_activate has no handler',
      'capability ATOMIC_PAUSE is declared but command vdi_deactivate has no handler',
      'VDI_RESET_ON_BOOT must be declared as VDI_RESET_ON_BOOT/2 (sm and xapi only reset with version 2)',
    ]);
  });

  it('passes for a consistent driver with lazily loaded handlers', async () => {
    const d = defineDriver({
      info: info(['VDI_CREATE', 'VDI_DELETE', 'SR_PROBE']),
      handlers: async () => ({
        default: { vdi_create: () => ({ uuid: 'a', location: 'a' }), vdi_delete: () => undefined, sr_probe: () => '', sr_create: () => undefined },
      }),
    });
    expect(await checkDriver(d)).toEqual([]);
  });

  it('defineDriver rejects unknown handler and exclusive command names', () => {
    expect(() => defineDriver({ info: info([]), handlers: { sr_teleport: () => undefined } as never })).toThrow(/handler for unknown command 'sr_teleport'/);
    expect(() => defineDriver({ info: info([]), exclusive: ['vdi_init' as never], handlers: {} })).toThrow(/exclusive lists unknown command 'vdi_init'/);
  });
});
