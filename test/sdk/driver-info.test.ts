import { describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  DriverInfoError,
  IMAGE_FORMATS,
  advertisedCapabilities,
  defineDriverInfo,
  driverInfoResponse,
  parseCapability,
  type DriverInfoInput,
} from '../../src/driver-info.js';
import { DriverInfoSchema, DriverInfoResponseSchema } from '../../src/sdk/protocol/driver-info-schema.js';

const base: DriverInfoInput = {
  name: 'Test',
  description: 'test driver',
  vendor: 'v',
  copyright: 'c',
  driver_version: '1.0',
  required_api_version: '1.0',
  capabilities: [],
  configuration: [{ key: 'device', description: 'the device' }],
};

describe('defineDriverInfo', () => {
  it('collapses duplicate formats, keeping the first occurrence in place', () => {
    const info = defineDriverInfo({ ...base, supported_image_formats: ['qcow2', 'vhd', 'qcow2', 'raw', 'vhd'] });
    expect(info.supported_image_formats).toEqual(['qcow2', 'vhd', 'raw']);
    expect(driverInfoResponse(info).supported_image_formats).toEqual(['qcow2', 'vhd', 'raw']);
  });

  it('rejects an unknown format, naming it and the allowed ones', () => {
    expect(() => defineDriverInfo({ ...base, supported_image_formats: ['vhd', 'vmdk'] })).toThrow(DriverInfoError);
    expect(() => defineDriverInfo({ ...base, supported_image_formats: ['vhd', 'vmdk'] })).toThrow(/"vmdk".*allowed: vhd, raw, qcow2/);
  });

  it('keeps an empty format list empty (the driver chooses), with no default unless given', () => {
    const info = defineDriverInfo({ ...base, supported_image_formats: [] });
    expect(info.supported_image_formats).toEqual([]);
    expect(info.default_image_format).toBeUndefined();
    expect(defineDriverInfo({ ...base }).supported_image_formats).toEqual([]);
    expect(defineDriverInfo({ ...base, default_image_format: 'raw' }).default_image_format).toBe('raw');
  });

  it('requires the default format to be supported', () => {
    expect(() => defineDriverInfo({ ...base, supported_image_formats: ['vhd', 'raw'], default_image_format: 'qcow2' })).toThrow(
      /default image format 'qcow2' is not one of the supported formats: vhd, raw/,
    );
    expect(() => defineDriverInfo({ ...base, default_image_format: 'vmdk' })).toThrow(/"vmdk".*allowed: vhd, raw, qcow2/);
    expect(defineDriverInfo({ ...base, supported_image_formats: ['raw', 'vhd'] }).default_image_format).toBe('raw');
    expect(defineDriverInfo({ ...base, supported_image_formats: ['raw', 'vhd'], default_image_format: 'vhd' }).default_image_format).toBe('vhd');
  });

  it('rejects an unknown capability, naming it and the allowed set', () => {
    let err: Error | undefined;
    try {
      defineDriverInfo({ ...base, capabilities: ['VDI_CREATE', 'VDI_TELEPORT'] });
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(DriverInfoError);
    expect(err!.message).toContain("'VDI_TELEPORT'");
    for (const c of CAPABILITIES) expect(err!.message).toContain(c);
  });

  it('accepts versioned capabilities and rejects bad versions', () => {
    const info = defineDriverInfo({ ...base, capabilities: ['VDI_RESET_ON_BOOT/2', 'VDI_CREATE'] });
    expect(info.capabilities).toEqual(['VDI_RESET_ON_BOOT/2', 'VDI_CREATE']);
    expect(parseCapability('VDI_RESET_ON_BOOT/2')).toEqual({ name: 'VDI_RESET_ON_BOOT', version: 2 });
    expect(parseCapability('VDI_CREATE')).toEqual({ name: 'VDI_CREATE', version: 1 });
    expect(() => parseCapability('VDI_RESET_ON_BOOT/x')).toThrow(/version after '\/' must be a positive integer/);
    expect(() => parseCapability('VDI_RESET_ON_BOOT/0')).toThrow(DriverInfoError);
    expect(() => defineDriverInfo({ ...base, capabilities: ['VDI_RESET_ON_BOOT/2', 'VDI_RESET_ON_BOOT/3'] })).toThrow(/twice with different versions/);
  });

  it('collapses a repeated capability', () => {
    expect(defineDriverInfo({ ...base, capabilities: ['SR_PROBE', 'VDI_CREATE', 'SR_PROBE'] }).capabilities).toEqual(['SR_PROBE', 'VDI_CREATE']);
  });

  it('rejects empty identity fields and duplicate configuration keys', () => {
    expect(() => defineDriverInfo({ ...base, vendor: '' })).toThrow(/DRIVER_INFO.vendor must be a non-empty string/);
    expect(() =>
      defineDriverInfo({ ...base, configuration: [{ key: 'a', description: 'x' }, { key: 'a', description: 'y' }] }),
    ).toThrow(/configuration key 'a' is declared twice/);
  });

  it('advertises VDI_ACTIVATE/VDI_DEACTIVATE with ATOMIC_PAUSE when missing, as sm does', () => {
    expect(advertisedCapabilities(defineDriverInfo({ ...base, capabilities: ['VDI_CREATE', 'ATOMIC_PAUSE'] }))).toEqual([
      'VDI_CREATE',
      'ATOMIC_PAUSE',
      'VDI_ACTIVATE',
      'VDI_DEACTIVATE',
    ]);
    expect(advertisedCapabilities(defineDriverInfo({ ...base, capabilities: ['VDI_DEACTIVATE', 'ATOMIC_PAUSE'] }))).toEqual([
      'VDI_DEACTIVATE',
      'ATOMIC_PAUSE',
      'VDI_ACTIVATE',
    ]);
    expect(advertisedCapabilities(defineDriverInfo({ ...base, capabilities: ['VDI_CREATE'] }))).toEqual(['VDI_CREATE']);
  });

  it('exports the closed format set', () => {
    expect([...IMAGE_FORMATS]).toEqual(['vhd', 'raw', 'qcow2']);
  });
});

describe('the zod schemas agree with defineDriverInfo', () => {
  it('DriverInfoSchema normalises and rejects like defineDriverInfo', () => {
    const parsed = DriverInfoSchema.parse({ ...base, supported_image_formats: ['raw', 'raw', 'vhd'] });
    expect(parsed).toEqual(defineDriverInfo({ ...base, supported_image_formats: ['raw', 'raw', 'vhd'] }));
    const bad = DriverInfoSchema.safeParse({ ...base, capabilities: ['NOPE'] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.message).toMatch(/unknown capability 'NOPE'; allowed: SR_PROBE/);
    const badFormat = DriverInfoSchema.safeParse({ ...base, supported_image_formats: ['vmdk'] });
    expect(badFormat.error!.issues[0]!.message).toMatch(/"vmdk".*allowed: vhd, raw, qcow2/);
  });

  it('DriverInfoResponseSchema accepts our answer and rejects one missing a mandatory member', () => {
    const resp = driverInfoResponse(defineDriverInfo({ ...base, supported_image_formats: ['vhd'] }));
    expect(DriverInfoResponseSchema.parse(resp)).toEqual(resp);
    const { capabilities: _, ...missing } = resp;
    expect(DriverInfoResponseSchema.safeParse(missing).success).toBe(false);
  });
});
