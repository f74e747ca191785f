// vdi-create's meta:<key>=<value> map -> the sm-config image-meta string.
import { describe, expect, it } from 'vitest';
import { ImageMetaError } from '../../src/sdk/image-meta/index.js';
import { metaMapToText } from '../../src/toolstack/import-plan/index.js';

describe('metaMapToText', () => {
  it('parses values as JSON when they parse, else strings; list keys also take a,b', () => {
    const text = metaMapToText({
      'qemu.min-ram-MB': '2048',
      'qemu.machine-types': 'q35,pc',
      'qemu.firmware': '["uefi"]',
      'qemu.arch': 'x86_64',
      'com.example.flag': 'true',
      'com.example.label': 'web 1',
    });
    expect(JSON.parse(text)).toEqual({
      'qemu.min-ram-MB': 2048,
      'qemu.machine-types': ['q35', 'pc'],
      'qemu.firmware': ['uefi'],
      'qemu.arch': 'x86_64',
      'com.example.flag': true,
      'com.example.label': 'web 1',
    });
  });

  it.each([
    [{ 'qemu.min-ram': '5' }, /^meta:qemu\.min-ram=5 is refused: key "qemu\.min-ram" .*not in the key registry/],
    [{ 'qemu.min-ram-MB': 'lots' }, /^meta:qemu\.min-ram-MB=lots is refused: .*integer >= 1, got string "lots"/],
    [{ 'qemu.firmware': 'uefi,coreboot' }, /^meta:qemu\.firmware=uefi,coreboot is refused: .*values from bios, uefi/],
    [{ build: '1' }, /^meta:build=1 is refused: key "build" is neither a registered "qemu\." key nor .*reverse-dotted vendor prefix/],
  ])('refuses %o naming the key and the rule', (meta, msg) => {
    let err: unknown;
    try {
      metaMapToText(meta);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImageMetaError);
    expect((err as Error).message).toMatch(msg);
  });
});
