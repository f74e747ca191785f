// Golden argv of the copy engine's qemu-img calls (fixture: fixtures/golden-argv.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { compareArgv, convertIntoArgv, convertToRawArgv, diesWithParentArgv } from '../../src/toolstack/migrate/argv.js';

const golden = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'golden-argv.json'), 'utf8')) as Record<string, string[]>;

it('convert into a pre-created target: -f/-O always, -n, --target-is-zero', () => {
  expect(convertIntoArgv({ src: '/sr/a.qcow2', srcFormat: 'qcow2', dst: '/sr/b.raw', dstFormat: 'raw' })).toEqual(golden['convertInto']);
});

it('convert to a staging raw file', () => {
  expect(convertToRawArgv({ src: '/sr/a.qcow2', srcFormat: 'qcow2', out: '/sr/.b.copy-staging' })).toEqual(golden['convertToRaw']);
});

it('compare with both formats given', () => {
  expect(compareArgv({ a: '/sr/a.raw', aFormat: 'raw', b: '/sr/b.qcow2', bFormat: 'qcow2' })).toEqual(golden['compare']);
});

it('never hands a VHD or an option-like path to qemu-img', () => {
  expect(() => convertIntoArgv({ src: '/a.vhd', srcFormat: 'vhd' as 'raw', dst: '/b.raw', dstFormat: 'raw' })).toThrow(/not used for vhd/);
  expect(() => compareArgv({ a: '-x', aFormat: 'raw', b: '/b', bFormat: 'raw' })).toThrow(/must not start with '-'/);
});

it('a raw LV longer than its VDI is read through a size window (--image-opts driver=raw,size=N)', () => {
  const lv = '/dev/VG_XenStorage-x/LV-a';
  expect(convertIntoArgv({ src: lv, srcFormat: 'raw', srcSize: 30 * 1024 * 1024, dst: '/sr/b.qcow2', dstFormat: 'qcow2' })).toEqual(golden['convertIntoRawWindow']);
  expect(compareArgv({ a: lv, aFormat: 'raw', aSize: 30 * 1024 * 1024, b: '/sr/b.qcow2', bFormat: 'qcow2' })).toEqual(golden['compareRawWindow']);
  // qemu's option syntax splits on ','; a window is whole sectors; only raw images get one.
  expect(() => convertIntoArgv({ src: '/dev/a,b', srcFormat: 'raw', srcSize: 512, dst: '/b', dstFormat: 'raw' })).toThrow(/must not contain ','/);
  expect(() => convertIntoArgv({ src: lv, srcFormat: 'raw', srcSize: 1000, dst: '/b', dstFormat: 'raw' })).toThrow(/not a multiple of 512/);
  expect(() => convertIntoArgv({ src: '/a.qcow2', srcFormat: 'qcow2', srcSize: 512, dst: '/b', dstFormat: 'raw' })).toThrow(/only for raw sources/);
  expect(() => compareArgv({ a: lv, aFormat: 'raw', aSize: 512, b: '-x', bFormat: 'qcow2' })).toThrow(/must not start with '-'/);
});

it('qemu-img runs tied to smctl: setpriv --pdeathsig KILL (a killed copy leaves no writer behind)', () => {
  const convert = convertIntoArgv({ src: '/sr/a.qcow2', srcFormat: 'qcow2', dst: '/sr/b.raw', dstFormat: 'raw' });
  expect(diesWithParentArgv(convert)).toEqual(golden['diesWithParent']);
  expect(() => diesWithParentArgv([])).toThrow(/no command/);
});
