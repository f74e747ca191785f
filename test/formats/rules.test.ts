import { describe, expect, it } from 'vitest';
import { checkChainDepth, fitsFormat, roundVirtualSize } from '../../src/sdk/formats/rules.js';
import { chooseCreateFormat, chooseRawSnapshotFormat, type FormatChoiceContext } from '../../src/sdk/formats/select.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function errorOf(fn: () => unknown): SRError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SRError) return e;
    throw e;
  }
  throw new Error('expected an SRError');
}

describe('virtual size rounding', () => {
  it('only ever rounds up, to each format granularity', () => {
    expect(roundVirtualSize('vhd', 1)).toBe(2 * MiB);
    expect(roundVirtualSize('vhd', 101 * MiB)).toBe(102 * MiB);
    expect(roundVirtualSize('vhd', 100 * MiB)).toBe(100 * MiB);
    expect(roundVirtualSize('qcow2', 10 * MiB + 1)).toBe(10 * MiB + 64 * 1024);
    expect(roundVirtualSize('raw', 4 * MiB + 1)).toBe(4 * MiB + 512);
    for (const size of [0, 1, 511, 513, 2 * MiB - 1, 8 * MiB + 1, 3 * GiB + 7]) {
      for (const f of ['vhd', 'qcow2', 'raw'] as const) expect(roundVirtualSize(f, size)).toBeGreaterThanOrEqual(size);
    }
  });

  it('refuses a VHD over 2040 GiB, naming the size and suggesting qcow2', () => {
    expect(roundVirtualSize('vhd', 2040 * GiB)).toBe(2040 * GiB);
    const e = errorOf(() => roundVirtualSize('vhd', 2040 * GiB + 1));
    expect(e.key).toBe('VDISize');
    expect(e.code).toBe(79);
    expect(e.message).toContain('2190433320961');
    expect(e.message).toContain('2040 GiB');
    expect(e.message).toContain('use qcow2');
    expect(fitsFormat('vhd', 2 * 1024 * GiB)).toBe(false);
    expect(fitsFormat('qcow2', 2 * 1024 * GiB)).toBe(true);
  });

  it('refuses negative and fractional sizes', () => {
    expect(errorOf(() => roundVirtualSize('raw', -1)).key).toBe('VDISize');
    expect(errorOf(() => roundVirtualSize('qcow2', 1.5)).key).toBe('VDISize');
  });

  it('limits chain depth per format', () => {
    expect(() => checkChainDepth('vhd', 30)).not.toThrow();
    expect(errorOf(() => checkChainDepth('vhd', 31)).code).toBe(109);
    expect(errorOf(() => checkChainDepth('raw', 2)).key).toBe('SnapshotChainTooLong');
  });
});

describe('image format selection at vdi_create', () => {
  const ctx = (deviceConfig: Record<string, string> = {}, supported: Array<'vhd' | 'qcow2' | 'raw'> = ['vhd', 'qcow2', 'raw']): FormatChoiceContext => ({
    srType: 'ext',
    supported,
    defaultFormat: 'vhd',
    deviceConfig,
  });

  it('takes sm-config:image-format first, then legacy type, then preferred, then the default', () => {
    expect(chooseCreateFormat({ 'image-format': 'qcow2', type: 'raw' }, ctx())).toBe('qcow2');
    expect(chooseCreateFormat({ type: 'raw' }, ctx())).toBe('raw');
    expect(chooseCreateFormat({ type: 'aio' }, ctx())).toBe('raw');
    expect(chooseCreateFormat({}, ctx({ 'preferred-image-formats': 'qcow2,vhd' }))).toBe('qcow2');
    expect(chooseCreateFormat({}, ctx())).toBe('vhd');
  });

  it('refuses an unsupported format naming the value, the SR type and the allowed formats', () => {
    const e = errorOf(() => chooseCreateFormat({ 'image-format': 'vmdk' }, ctx()));
    expect(e.code).toBe(66);
    expect(e.message).toContain("'vmdk'");
    expect(e.message).toContain("SR type 'ext'");
    expect(e.message).toContain('vhd, qcow2, raw');
    const narrow = errorOf(() => chooseCreateFormat({ 'image-format': 'raw' }, ctx({}, ['vhd', 'qcow2'])));
    expect(narrow.message).toContain('supported formats: vhd, qcow2');
  });

  it('refuses a preferred-image-formats entry that is not a supported format', () => {
    const e = errorOf(() => chooseCreateFormat({}, ctx({ 'preferred-image-formats': 'qcow2,vdi' })));
    expect(e.message).toContain("'vdi'");
    expect(e.message).toContain('preferred-image-formats');
  });

  it('snapshots raw into the first preferred copy-on-write format that can hold it', () => {
    expect(chooseRawSnapshotFormat(10 * GiB, ctx({ 'preferred-image-formats': 'raw,qcow2,vhd' }))).toBe('qcow2');
    expect(chooseRawSnapshotFormat(10 * GiB, ctx())).toBe('vhd');
    expect(chooseRawSnapshotFormat(3000 * GiB, ctx())).toBe('qcow2');
    expect(errorOf(() => chooseRawSnapshotFormat(3000 * GiB, ctx({}, ['vhd', 'raw']))).key).toBe('VDISnapshot');
  });
});
