// LVM report parsers on captured real output (test/fixtures/tools/lvm/), and lv_attr decoding.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as lvm from '../../src/sdk/tools/lvm.js';
import { ToolError, type ToolOutput } from '../../src/sdk/tools/run.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'tools', 'lvm');
const captured = (name: string): ToolOutput => ({ command: ['captured', name], exitCode: 0, stdout: readFileSync(join(dir, name), 'utf8'), stderr: '' });

describe('lvm report parsers (captured output)', () => {
  it('lvs with segments: one record per LV, segments in logical order, tags split', () => {
    expect(lvm.parseLvs(captured('lvs-segments.json'), { segments: true })).toEqual([
      {
        lvName: 'MGT', vgName: 'VG_XenStorage-cap', lvUuid: 'x8eJD9-JkmT-QlbN-xt41-3yMh-uXqo-2aNRpN', lvSize: 4194304,
        attr: { raw: '-ri-XX----', readOnly: true, active: null, open: null }, tags: [],
        segments: [{ startExtent: 0, peRanges: ['/dev/loop0:2-2'] }],
      },
      {
        lvName: 'VHD-aaaa', vgName: 'VG_XenStorage-cap', lvUuid: 'bifvbS-dFH8-Iqh7-s7P7-f7Og-5eoj-2D3mwp', lvSize: 16777216,
        attr: { raw: '-wi-XX----', readOnly: false, active: null, open: null }, tags: ['hidden'],
        segments: [
          { startExtent: 0, peRanges: ['/dev/loop0:0-1'] },
          { startExtent: 2, peRanges: ['/dev/loop0:3-4'] },
        ],
      },
    ]);
  });

  it('vgs and pvs: numbers, tags, seqno', () => {
    expect(lvm.parseVgs(captured('vgs.json'))).toEqual([
      {
        vgName: 'VG_XenStorage-cap', vgUuid: 'qWR2HZ-74vG-TCyE-ebRi-lBLx-NgvB-r9MEMY', vgSize: 121634816, vgFree: 100663296,
        extentSize: 4194304, seqno: 5, pvCount: 1, lvCount: 2, tags: [],
      },
    ]);
    expect(lvm.parsePvs(captured('pvs.json'))).toEqual([
      { pvName: '/dev/loop0', vgName: 'VG_XenStorage-cap', pvUuid: 'UDjnFB-OZo9-5j8h-Fi1r-QLug-bqHq-dq9LXc', pvSize: 121634816, pvFree: 100663296, peStart: 11534336 },
    ]);
  });

  it('refuses output that is not the expected report, naming the command', () => {
    const bad = (stdout: string): ToolOutput => ({ command: ['lvs', '-o', 'x'], exitCode: 0, stdout, stderr: '' });
    expect(() => lvm.parseLvs(bad('  LV VG Attr\n'))).toThrow(/^lvs -o x: unexpected output \(not JSON\)/);
    expect(() => lvm.parseVgs(bad('{"report":[{"vg":[{"vg_name":"a","vg_size":"12k"}]}]}'))).toThrow(ToolError);
  });
});

describe('decodeLvAttr', () => {
  it('decodes permissions, state and open flags', () => {
    expect(lvm.decodeLvAttr('-wi-ao----')).toEqual({ raw: '-wi-ao----', readOnly: false, active: true, open: true });
    expect(lvm.decodeLvAttr('-ri-a-----')).toEqual({ raw: '-ri-a-----', readOnly: true, active: true, open: false });
    expect(lvm.decodeLvAttr('-Ri-------')).toMatchObject({ readOnly: true, active: false, open: false });
    expect(lvm.decodeLvAttr('-wi-XX----')).toMatchObject({ active: null, open: null });
    expect(() => lvm.decodeLvAttr('-wi')).toThrow(/lv_attr "-wi" is shorter than 6 characters/);
  });
});
