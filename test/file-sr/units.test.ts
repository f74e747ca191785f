// Small pure pieces of the file-SR core and the `file` driver's declaration.
import { describe, expect, it } from 'vitest';
import { checkDriver } from '../../src/sdk/driver.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { checkVdiName, uuidOfFileName, vdiPath } from '../../src/sdk/file-sr/paths.js';
import { snapshotMode } from '../../src/sdk/file-sr/snapshot.js';
import { prunable } from '../../src/sdk/gc/chain-plan.js';
import { reportedVdis } from '../../src/sdk/file-sr/reconcile.js';
import type { Inventory, VdiNode } from '../../src/sdk/file-sr/inventory.js';
import { driver } from '../../drivers/file/main.js';
import { locationOf } from '../../drivers/file/handlers.js';

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function refused(fn: () => unknown): SRError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SRError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('VDI names', () => {
  it('accepts a UUID (lower-cased) and refuses anything that could leave the SR, saying why', () => {
    expect(checkVdiName('vdi_location', U(1).toUpperCase())).toBe(U(1));
    const cases: [string, RegExp][] = [
      ['../etc/passwd', /contains '\.\.'/],
      ['/etc/passwd', /absolute path/],
      [`${U(1)}\0`, /NUL byte/],
      ['a/b', /path separator/],
      ['', /empty/],
      ['abc', /not a UUID/],
    ];
    for (const [v, why] of cases) {
      const e = refused(() => checkVdiName('vdi_location', v));
      expect(e.key).toBe('BadRequest');
      expect(e.message).toContain(`vdi_location ${JSON.stringify(v)}`);
      expect(e.message).toMatch(why);
    }
  });

  it('builds file paths directly inside the SR and reads uuids back from file names', () => {
    expect(vdiPath('/run/sr-mount/x', U(2), 'qcow2')).toBe(`/run/sr-mount/x/${U(2)}.qcow2`);
    expect(uuidOfFileName(`${U(3)}.vhd`)).toBe(U(3));
    expect(uuidOfFileName(`${U(3)}.vhd.new`)).toBeNull();
    expect(uuidOfFileName('filelog.txt')).toBeNull();
  });
});

describe('file driver declaration', () => {
  it('declares exactly the capabilities it implements', async () => {
    expect(await checkDriver(driver)).toEqual([]);
  });

  it('device-config:location: required (94, naming the key), absolute', () => {
    const e = refused(() => locationOf({}));
    expect(e.code).toBe(94);
    expect(e.message).toContain('device-config:location');
    expect(refused(() => locationOf({ location: 'relative/dir' })).message).toContain('absolute');
  });
});

describe('snapshot modes', () => {
  it('maps driver_params:type, refusing unknown values by name', () => {
    expect(snapshotMode({}, 'vdi_snapshot')).toBe('double');
    expect(snapshotMode({ type: 'single' }, 'vdi_clone')).toBe('single');
    expect(snapshotMode({ type: 'internal' }, 'vdi_snapshot')).toBe('internal');
    const e = refused(() => snapshotMode({ type: 'triple' }, 'vdi_clone'));
    expect(e.key).toBe('VDIClone');
    expect(e.message).toContain('"triple"');
  });
});

describe('tree rules (spec §5.1, §5.7)', () => {
  const node = (n: number, parent: number | null, hidden: boolean, children: number[]): VdiNode => ({
    uuid: U(n), format: 'vhd', path: `/sr/${U(n)}.vhd`, virtualSize: 1, physicalSize: 1,
    parent: parent === null ? null : U(parent), foreignParent: null, hidden, children: children.map(U),
  });
  // 1(hidden) ← 2(hidden) ← 3(hidden leaf);  1 ← 4(visible);  5(hidden leaf alone)
  const inv: Inventory = {
    srDir: '/sr',
    errors: [],
    vdis: new Map([node(1, null, true, [2, 4]), node(2, 1, true, [3]), node(3, 2, true, []), node(4, 1, false, []), node(5, null, true, [])].map((v) => [v.uuid, v])),
  };

  it('garbage is every hidden subtree with no visible descendant, leaves first', () => {
    expect(prunable(inv.vdis).map((v) => v.uuid)).toEqual([U(3), U(2), U(5)]);
  });

  it('scan reports everything but hidden leaves; hidden parents unmanaged and read-only', () => {
    const r = new Map(reportedVdis(inv).map((v) => [v.uuid, v]));
    expect([...r.keys()].sort()).toEqual([U(1), U(2), U(4)]);
    expect(r.get(U(1))).toMatchObject({ managed: false, readOnly: true, smConfig: { 'image-format': 'vhd' } });
    expect(r.get(U(4))).toMatchObject({ managed: true, readOnly: false, smConfig: { 'image-format': 'vhd', 'vhd-parent': U(1) } });
  });
});
