import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  SRError,
  describeToolFailure,
  errorByCode,
  errorByName,
  errorKeyForCommand,
  faultFor,
  isToolFailure,
} from '../../src/sdk/errors/index.js';
import { XenAPIFailure, XenAPIProtocolError } from '../../src/sdk/xenapi/client.js';

describe('the XE_SR_ERRORCODES table', () => {
  it('holds all 185 codes of xcp-ng/sm 3.2.12-8.3, each name and code unique', () => {
    expect(ERROR_CODES).toHaveLength(185);
    expect(new Set(ERROR_CODES.map((e) => e.name)).size).toBe(185);
    expect(new Set(ERROR_CODES.map((e) => e.code)).size).toBe(185);
  });

  it('has the codes xapi maps specially and the ones drivers use', () => {
    const expected: Array<[string, number, string]> = [
      ['SRInUse', 16, 'The SR device is currently in use'],
      ['VDIInUse', 24, 'The VDI is currently in use'],
      ['LockErr', 37, 'The lock/unlock request failed'],
      ['Unimplemented', 38, 'The requested method is not supported/implemented'],
      ['SRNotEmpty', 39, 'The SR is not empty'],
      ['SRScan', 40, 'The SR scan failed '],
      ['VDICreate', 78, 'VDI Creation failed'],
      ['BadRequest', 143, 'Failed to parse the request'],
      ['VDIMissing', 144, 'VDI could not be found'],
      ['APIFailure', 153, 'A Failure occurred accessing an API object'],
      ['APIProtocolError', 154, 'A protocol error was received when accessing the API'],
      ['SMGeneral', 202, 'General backend error'],
      ['WipefsFailure', 462, 'Failed to wipe pre-existing filesystem signature.'],
      ['GenericException', 1200, 'SM has thrown a generic python exception'],
      ['LargeBlockVGReconnectFailed', 5011, 'Failed to reconnect the VolumeGroup'],
    ];
    for (const [name, code, description] of expected) {
      expect(errorByName(name)).toEqual({ name, code, description });
      expect(errorByCode(code)?.name).toBe(name);
    }
  });
});

describe('SRError', () => {
  it('renders the detail as [opterr=...] after the description', () => {
    const e = new SRError('VDICreate', 'disk full');
    expect(e.code).toBe(78);
    expect(e.faultString).toBe('VDI Creation failed [opterr=disk full]');
    expect(e.toFault()).toEqual({ faultCode: 78, faultString: 'VDI Creation failed [opterr=disk full]' });
    expect(new SRError('Unimplemented').toFault()).toEqual({ faultCode: 38, faultString: 'The requested method is not supported/implemented' });
  });

  it('an unknown key is code 1 "Error reporting error, unknown key <key>", as sm', () => {
    expect(new SRError('NoSuchKey', 'x').toFault()).toEqual({ faultCode: 1, faultString: 'Error reporting error, unknown key NoSuchKey' });
  });
});

describe('faultFor: what a failed command answers', () => {
  const toolFailure = { command: ['qemu-img', 'create', '-f', 'qcow2', '/x y'], exitCode: 1, stderr: 'qemu-img: no space\n' };

  it('maps a tool failure by command, as SRCommand.EXCEPTION_TYPE', () => {
    const cases: Array<[string, number]> = [
      ['sr_scan', 40],
      ['vdi_create', 78],
      ['vdi_delete', 80],
      ['vdi_attach', 46],
      ['vdi_detach', 46],
      ['vdi_activate', 46],
      ['vdi_deactivate', 46],
      ['vdi_resize', 110],
      ['vdi_resize_online', 110],
      ['vdi_snapshot', 82],
      ['vdi_clone', 81],
      ['sr_create', 202],
      ['sr_attach', 202],
    ];
    for (const [cmd, code] of cases) expect(faultFor(cmd, toolFailure).faultCode).toBe(code);
    expect(faultFor('vdi_create', toolFailure).faultString).toBe(
      'VDI Creation failed [opterr=Command qemu-img create -f qcow2 "/x y" failed (exit 1): qemu-img: no space]',
    );
    expect(errorKeyForCommand('vdi_init')).toBe('VDILoad');
  });

  it('recognises the tool-failure shape structurally (command or argv array, exitCode, stderr)', () => {
    class ToolError extends Error {
      constructor(
        readonly command: string[],
        readonly exitCode: number,
        readonly stderr: string,
      ) {
        super('tool failed');
      }
    }
    expect(isToolFailure(new ToolError(['lvs'], 5, 'boom'))).toBe(true);
    expect(isToolFailure({ argv: ['lvs'], exitCode: 5, stderr: '' })).toBe(true);
    expect(isToolFailure({ command: 'lvs', exitCode: 5, stderr: '' })).toBe(false);
    expect(isToolFailure({ command: ['lvs'], exitCode: '5', stderr: '' })).toBe(false);
    expect(isToolFailure(new Error('x'))).toBe(false);
    expect(describeToolFailure({ command: ['lvs'], exitCode: 5, stderr: '' })).toBe('Command lvs failed (exit 5)');
  });

  it('keeps an SRError as is, maps XenAPI failures to 153/154 and anything else to 1200 without a stack', () => {
    expect(faultFor('vdi_create', new SRError('VDISize', 'too big'))).toEqual({ faultCode: 79, faultString: 'VDI Invalid size [opterr=too big]' });
    expect(faultFor('sr_scan', new XenAPIFailure('VDI.get_by_uuid', ['UUID_INVALID', 'VDI', 'x']))).toEqual({
      faultCode: 153,
      faultString: 'A Failure occurred accessing an API object [opterr=VDI.get_by_uuid: UUID_INVALID, VDI, x]',
    });
    expect(faultFor('sr_scan', new XenAPIProtocolError('SR.get_record', 'connect ECONNREFUSED')).faultCode).toBe(154);
    const generic = faultFor('sr_attach', new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(generic).toEqual({ faultCode: 1200, faultString: "Cannot read properties of undefined (reading 'x')" });
    expect(generic.faultString).not.toMatch(/\n\s+at /);
    expect(faultFor('sr_attach', 'a string')).toEqual({ faultCode: 1200, faultString: 'a string' });
  });
});
