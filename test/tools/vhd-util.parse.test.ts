// vhd-util output parsers fed with the verbatim outputs of the real blktap tool
// (test/fixtures/tools/vhd-util/, copied from spec/vhd-util.md §3).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ToolError, type ToolOutput } from '../../src/sdk/tools/run.js';
import * as vhd from '../../src/sdk/tools/vhd-util.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'tools', 'vhd-util');
const captured = (name: string, exitCode = 0): ToolOutput => ({
  command: ['vhd-util', 'captured', name],
  exitCode,
  stdout: readFileSync(join(dir, name), 'utf8'),
  stderr: '',
});
const out = (stdout: string): ToolOutput => ({ command: ['vhd-util', 'x'], exitCode: 0, stdout, stderr: '' });

const ALL: vhd.VhdQueryField[] = ['virtualSize', 'physicalSize', 'parent', 'hidden', 'marker', 'depth', 'allocatedBlocks', 'maxResizeSize'];

describe('vhd-util query parser', () => {
  it('parses every field of an empty base', () => {
    expect(vhd.parseQuery(captured('query-base-vsp-fmdaS.txt'), ALL)).toEqual({
      virtualSizeMiB: 100, physicalSize: 3584, parent: null, hidden: 0, marker: 0, depth: 1, allocatedBlocks: 0, maxResizeSizeMiB: 100,
    });
  });

  it('parses every field of a child, in output order whatever the flag order', () => {
    const shuffled: vhd.VhdQueryField[] = ['maxResizeSize', 'hidden', 'allocatedBlocks', 'parent', 'depth', 'virtualSize', 'marker', 'physicalSize'];
    expect(vhd.parseQuery(captured('query-child-vsp-fmdaS.txt'), shuffled)).toEqual({
      virtualSizeMiB: 100, physicalSize: 6308352, parent: '/srv/vt/base.vhd', hidden: 0, marker: 0, depth: 2, allocatedBlocks: 3, maxResizeSizeMiB: 100,
    });
  });

  it('parses sm getVHDInfo output (-vsafp): lines v, s, p, f, a', () => {
    const fields: vhd.VhdQueryField[] = ['virtualSize', 'physicalSize', 'allocatedBlocks', 'hidden', 'parent'];
    expect(vhd.parseQuery(out('100\n6308352\n/srv/vt/base.vhd\nhidden: 1\n3\n'), fields)).toEqual({
      virtualSizeMiB: 100, physicalSize: 6308352, parent: '/srv/vt/base.vhd', hidden: 1, allocatedBlocks: 3,
    });
  });

  it('parses the unresolved parent locator (-p -u)', () => {
    expect(vhd.parseQuery(captured('query-child-pu.txt'), ['parent'])).toEqual({ parent: './base.vhd' });
  });

  it('refuses output with the wrong number of lines or a wrong prefix, naming the command', () => {
    expect(() => vhd.parseQuery(out('100\n'), ['virtualSize', 'hidden'])).toThrow(ToolError);
    expect(() => vhd.parseQuery(out('100\n'), ['virtualSize', 'hidden'])).toThrow(/expected 2 line\(s\) for virtualSize,hidden/);
    expect(() => vhd.parseQuery(out('marker: 0\n'), ['hidden'])).toThrow(/hidden: expected "hidden:…", got "marker: 0"/);
    expect(() => vhd.parseQuery(out('error checking chain depth: -2\n'), ['depth'])).toThrow(/expected "chain depth:…"/);
    expect(() => vhd.parseQuery(out('query failed\n'), ['parent'])).toThrow(/parent: query failed/);
  });
});

describe('vhd-util scan parser', () => {
  it('parses fast scan lines (basenames, header parent)', () => {
    expect(vhd.parseScan(captured('scan-f.txt'))).toEqual([
      { kind: 'vhd', name: 'base.vhd', capacity: 104857600, size: 10506752, hidden: 0, parent: null },
      { kind: 'vhd', name: 'child.vhd', capacity: 104857600, size: 6308352, hidden: 0, parent: 'base.vhd' },
    ]);
  });

  it('parses verbose scan lines (full paths)', () => {
    const e = vhd.parseScan(captured('scan-v.txt'));
    expect(e.map((x) => [x.name, x.kind === 'vhd' ? x.parent : 'error'])).toEqual([
      ['/srv/vt/base.vhd', null],
      ['/srv/vt/child.vhd', '/srv/vt/base.vhd'],
    ]);
  });

  it('parses marker and (empty) keyhash with -M, and a 64-hex keyhash', () => {
    const [base] = vhd.parseScan(captured('scan-f-M.txt'));
    expect(base).toEqual({ kind: 'vhd', name: 'base.vhd', capacity: 104857600, size: 10506752, hidden: 0, marker: 0, keyhash: '', parent: null });
    const hash = 'a'.repeat(64);
    expect(vhd.parseScanLine(`vhd=k.vhd capacity=10485760 size=3584 hidden=0 marker=1 keyhash=${hash} parent=none`)).toEqual({
      kind: 'vhd', name: 'k.vhd', capacity: 10485760, size: 3584, hidden: 0, marker: 1, keyhash: hash, parent: null,
    });
  });

  it('parses scan-error lines into error entries', () => {
    expect(vhd.parseScan(captured('scan-f-a-other-cwd.txt'))).toEqual([
      { kind: 'vhd', name: 'child.vhd', capacity: 104857600, size: 6308352, hidden: 0, parent: 'base.vhd' },
      { kind: 'error', name: 'base.vhd', error: -2, message: 'failure scanning target' },
    ]);
    expect(vhd.parseScan(captured('scan-f-fixed.txt', 22))).toEqual([
      { kind: 'error', name: 'fixed.vhd', error: -22, message: 'opening file' },
    ]);
  });

  it('parses hidden images and LV names', () => {
    expect(vhd.parseScanLine('vhd=VHD-0a1b capacity=10737418240 size=10766778368 hidden=1 parent=VHD-ffee')).toEqual({
      kind: 'vhd', name: 'VHD-0a1b', capacity: 10737418240, size: 10766778368, hidden: 1, parent: 'VHD-ffee',
    });
  });

  it('refuses pretty-mode and unknown lines', () => {
    expect(vhd.parseScanLine('   vhd=child.vhd capacity=1 size=1 hidden=0 parent=base.vhd')).toBeNull();
    expect(() => vhd.parseScan(out('vhd=rawchild.vhd capacity=67108864 size=5120 hidden=0 parent=raw.img (not found in scan)\nbogus\n'))).toThrow(/scan line "bogus"/);
  });
});

describe('vhd-util coalesce / read / key / check parsers', () => {
  it('parses "Coalesced N sectors" (no trailing newline) into sectors and bytes', () => {
    expect(vhd.parseCoalesce(captured('coalesce.txt'))).toEqual({ sectors: 4104, bytes: 4104 * 512 });
  });

  it('parses the Coalesced line after sparse notice and progress output', () => {
    expect(vhd.parseCoalesce(captured('coalesce-s-p.txt'))).toEqual({ sectors: 2097152, bytes: 1073741824 });
  });

  it('refuses coalesce output without the Coalesced line', () => {
    expect(() => vhd.parseCoalesce(out('error coalescing: -22\n'))).toThrow(/no "Coalesced N sectors" line/);
  });

  it('parses read -p of a differencing disk: type, uuids, parent name, first decoded name', () => {
    expect(vhd.parseReadHeaders(captured('read-p-child.txt'))).toEqual({
      diskType: 'Differencing',
      uuid: 'e142e42f-fb49-4784-b061-6bad8e0edc75',
      hidden: 0,
      currentSize: 104857600,
      parentName: 'base.vhd',
      parentUuid: 'f2951169-c554-40ea-9dce-97b6088db7a0',
      decodedName: './base.vhd',
    });
  });

  it('parses read -p of a dynamic base (empty parent name, no locators)', () => {
    const base = readFileSync(join(dir, 'read-p-child.txt'), 'utf8')
      .replace('Differencing hard disk', 'Dynamic hard disk')
      .replace('Parent name         : base.vhd', 'Parent name         : ')
      .replace(/\nVHD Parent Locators:[\s\S]*?(?=\nVHD Batmap)/, '\n');
    const h = vhd.parseReadHeaders(out(base));
    expect(h.diskType).toBe('Dynamic');
    expect(h.parentName).toBe('');
    expect(h.decodedName).toBeNull();
  });

  it('decodes an LV name from a locator the way sm does (-- → -, last 40 chars)', () => {
    expect(vhd.lvNameFromDecodedName('/dev/mapper/VG_XenStorage--0f5a--aa-VHD--e142e42f--fb49--4784--b061--6bad8e0edc75')).toBe(
      'VHD-e142e42f-fb49-4784-b061-6bad8e0edc75',
    );
    expect(vhd.lvNameFromDecodedName('../VG_XenStorage--0f5a/LV--e142e42f--fb49--4784--b061--6bad8e0edc75')).toBe(
      'LV-e142e42f-fb49-4784-b061-6bad8e0edc75',
    );
  });

  it('parses key -p output', () => {
    expect(vhd.parseKeyPrint(out('none\n'))).toBeNull();
    const [n, h] = ['1'.repeat(64), 'f'.repeat(64)];
    expect(vhd.parseKeyPrint(out(`${n} ${h}\n`))).toEqual({ nonce: n, hash: h });
    expect(() => vhd.parseKeyPrint(out('garbage\n'))).toThrow(ToolError);
  });

  it('classes check exit codes as sm does', () => {
    expect([0, 22, 2, 30, 124, 1].map(vhd.checkStatus)).toEqual(['valid', 'invalid', 'unavailable', 'unavailable', 'unavailable', 'invalid']);
  });
});
