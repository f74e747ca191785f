// The planner's combine rules on hand-made inputs (the planner is pure: the
// inputs are what readEffective / the driver report). Real images and the
// real smctl are in files.test.ts and file-sr.test.ts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { defaultRegistry, parseRegistry, REGISTRY_FILE } from '../../src/sdk/image-meta/index.js';
import { COMBINE_RULES, planImport, renderPlan, type ImageMetaInput, type ImportPlan } from '../../src/toolstack/import-plan/index.js';

function img(label: string, obj: Record<string, unknown> | null, from: string = label, extra: Partial<ImageMetaInput> = {}): ImageMetaInput {
  return { label, text: obj === null ? null : JSON.stringify(obj), from: obj === null ? null : from, ...extra };
}

const setting = (p: ImportPlan, key: string) => p.settings.find((s) => s.key === key);

describe('combine rule table', () => {
  it('has a rule for every key of the registry, and no rule for a key the registry lacks', () => {
    const registry = defaultRegistry();
    const keys = [...registry.entries.keys()];
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !(k in COMBINE_RULES))).toEqual([]);
    expect(Object.keys(COMBINE_RULES).filter((k) => !registry.entries.has(k))).toEqual([]);
  });

  it('list rules only on list keys, maximum only on integer keys', () => {
    for (const [key, r] of Object.entries(COMBINE_RULES)) {
      const type = defaultRegistry().entries.get(key)!.type;
      if (r.rule === 'intersection') expect(['string-list', 'enum-list'], key).toContain(type);
      if (r.rule === 'maximum' || r.rule === 'per-disk') expect(type, key).toBe('integer');
    }
  });

  it('a registry key without a rule is a blocking no-rule disagreement', () => {
    const text = readFileSync(REGISTRY_FILE, 'utf8') + '  - name: qemu.tpm-version\n    type: string\n    meaning: TPM version the guest needs.\n';
    const reg = parseRegistry(text);
    const p = planImport([img('a', { 'qemu.tpm-version': '2.0' })], reg);
    expect(setting(p, 'qemu.tpm-version')).toMatchObject({ status: 'no-rule', value: null });
    expect(p.disagreements).toMatchObject([{ key: 'qemu.tpm-version', kind: 'no-rule', blocking: true }]);
    expect(p.blocked).toBe(true);
  });
});

describe('planImport', () => {
  it('agreeing disks: every setting proposed, no disagreement', () => {
    const m = { 'qemu.machine-types': ['q35', 'pc'], 'qemu.min-ram-MB': 1024, 'qemu.firmware': ['uefi'], 'qemu.arch': 'x86_64', 'qemu.os.type': 'linux' };
    const p = planImport([img('a.qcow2', m, 'base.qcow2'), img('b.vhd', m)]);
    expect(p.disagreements).toEqual([]);
    expect(p.blocked).toBe(false);
    expect(p.settings.map((s) => [s.key, s.status, s.choice])).toEqual([
      ['qemu.machine-types', 'agreed', 'q35'],
      ['qemu.min-ram-MB', 'agreed', 1024],
      ['qemu.firmware', 'agreed', 'uefi'],
      ['qemu.arch', 'agreed', 'x86_64'],
      ['qemu.os.type', 'agreed', 'linux'],
    ]);
    expect(setting(p, 'qemu.machine-types')!.values).toEqual([
      { image: 'a.qcow2', value: ['q35', 'pc'], source: 'base.qcow2' },
      { image: 'b.vhd', value: ['q35', 'pc'], source: 'b.vhd' },
    ]);
  });

  it('maximum: min-ram-MB takes the largest, and the difference is listed with each value and source', () => {
    const p = planImport([img('a', { 'qemu.min-ram-MB': 1024 }, 'base'), img('b', { 'qemu.min-ram-MB': 4096 }), img('c', { 'qemu.min-ram-MB': 2048 })]);
    expect(setting(p, 'qemu.min-ram-MB')).toMatchObject({ rule: 'maximum', status: 'combined', value: 4096 });
    expect(p.disagreements).toEqual([
      {
        key: 'qemu.min-ram-MB',
        kind: 'differs',
        blocking: false,
        message: expect.stringContaining('maximum, 4096'),
        values: [
          { image: 'a', value: 1024, source: 'base' },
          { image: 'b', value: 4096, source: 'b' },
          { image: 'c', value: 2048, source: 'c' },
        ],
      },
    ]);
    expect(p.blocked).toBe(false);
  });

  it('intersection keeps the first disk\'s preference order', () => {
    const p = planImport([
      img('a', { 'qemu.machine-types': ['pc', 'q35', 'i440fx'] }),
      img('b', { 'qemu.machine-types': ['q35', 'pc'] }),
      img('c', { 'qemu.machine-types': ['i440fx', 'q35', 'pc', 'virt'] }),
    ]);
    expect(setting(p, 'qemu.machine-types')).toMatchObject({ rule: 'intersection', status: 'combined', value: ['pc', 'q35'], choice: 'pc' });
    expect(p.disagreements).toMatchObject([{ key: 'qemu.machine-types', kind: 'differs', blocking: false }]);
    expect(p.disagreements[0]!.values.map((v) => v.image)).toEqual(['a', 'b', 'c']);
  });

  it('same list in another order is listed (preferences differ) but not blocking', () => {
    const p = planImport([img('a', { 'qemu.firmware': ['uefi', 'bios'] }), img('b', { 'qemu.firmware': ['bios', 'uefi'] })]);
    expect(setting(p, 'qemu.firmware')).toMatchObject({ value: ['uefi', 'bios'], choice: 'uefi' });
    expect(p.disagreements).toMatchObject([{ key: 'qemu.firmware', kind: 'differs', blocking: false }]);
  });

  it('empty intersection: no value, a blocking disagreement naming both lists and images', () => {
    const p = planImport([img('x86.qcow2', { 'qemu.machine-types': ['q35', 'pc'] }, 'base.qcow2'), img('arm.qcow2', { 'qemu.machine-types': ['virt'] })]);
    expect(setting(p, 'qemu.machine-types')).toMatchObject({ status: 'conflict', value: null, choice: null });
    expect(p.disagreements).toEqual([
      {
        key: 'qemu.machine-types',
        kind: 'empty-intersection',
        blocking: true,
        message: expect.stringContaining('empty intersection'),
        values: [
          { image: 'x86.qcow2', value: ['q35', 'pc'], source: 'base.qcow2' },
          { image: 'arm.qcow2', value: ['virt'], source: 'arm.qcow2' },
        ],
      },
    ]);
    expect(p.blocked).toBe(true);
  });

  it('must-agree: different single values give no value and block; all differing values are listed', () => {
    const p = planImport([
      img('a', { 'qemu.arch': 'x86_64', 'qemu.cpu.sockets': 2 }),
      img('b', { 'qemu.arch': 'aarch64', 'qemu.cpu.sockets': 2 }),
      img('c', { 'qemu.arch': 'x86_64' }),
    ]);
    expect(setting(p, 'qemu.arch')).toMatchObject({ rule: 'must-agree', status: 'conflict', value: null });
    expect(setting(p, 'qemu.cpu.sockets')).toMatchObject({ status: 'agreed', value: 2, without: ['c'] });
    expect(p.disagreements).toHaveLength(1);
    expect(p.disagreements[0]).toMatchObject({ key: 'qemu.arch', kind: 'conflict', blocking: true });
    expect(p.disagreements[0]!.values.map((v) => [v.image, v.value])).toEqual([['a', 'x86_64'], ['b', 'aarch64'], ['c', 'x86_64']]);
  });

  it('a disk without machine data (a data disk) constrains nothing', () => {
    const p = planImport([img('os', { 'qemu.min-ram-MB': 512, 'qemu.arch': 'x86_64' }), img('data', null)]);
    expect(p.disagreements).toEqual([]);
    expect(p.images).toEqual([
      { label: 'os', from: 'os', keys: ['qemu.min-ram-MB', 'qemu.arch'] },
      { label: 'data', from: null, keys: [] },
    ]);
    expect(setting(p, 'qemu.min-ram-MB')).toMatchObject({ value: 512, without: ['data'] });
  });

  it('vendor keys are passed through per image, never merged or compared', () => {
    const p = planImport([
      img('a', { 'com.example.build': 42, 'org.acme.tier': 'gold' }, 'base'),
      img('b', { 'com.example.build': 7 }),
    ]);
    expect(p.vendor).toEqual([
      { key: 'com.example.build', image: 'a', value: 42, source: 'base' },
      { key: 'org.acme.tier', image: 'a', value: 'gold', source: 'base' },
      { key: 'com.example.build', image: 'b', value: 7, source: 'b' },
    ]);
    expect(p.settings).toEqual([]);
    expect(p.disagreements).toEqual([]);
  });

  it('per-key sources are used when given (per key, the image it comes from)', () => {
    const p = planImport([img('top', { 'qemu.min-ram-MB': 1 }, 'mid', { sources: { 'qemu.min-ram-MB': 'base' } })]);
    expect(setting(p, 'qemu.min-ram-MB')!.values[0]!.source).toBe('base');
  });

  it('min-disk-GB stays per disk, and a disk smaller than its own minimum is noted', () => {
    const GiB = 1024 ** 3;
    const p = planImport([
      img('a', { 'qemu.min-disk-GB': 10 }, 'a', { virtualSize: 20 * GiB }),
      img('b', { 'qemu.min-disk-GB': 4 }, 'b', { virtualSize: 1 * GiB }),
    ]);
    expect(setting(p, 'qemu.min-disk-GB')).toMatchObject({ rule: 'per-disk', status: 'per-disk', value: null });
    expect(setting(p, 'qemu.min-disk-GB')!.values.map((v) => v.value)).toEqual([10, 4]);
    expect(p.disagreements).toMatchObject([{ key: 'qemu.min-disk-GB', kind: 'too-small', blocking: false, values: [{ image: 'b', value: 4 }] }]);
    expect(p.disagreements[0]!.message).toContain('b is 1073741824 bytes');
    expect(p.blocked).toBe(false);
  });

  it('a stored value the registry refuses is not used and blocks; an unregistered qemu. key is ignored and noted', () => {
    const p = planImport([img('a', { 'qemu.min-ram-MB': 'lots', 'qemu.colour': 'red' }), img('b', { 'qemu.min-ram-MB': 512 })]);
    expect(setting(p, 'qemu.min-ram-MB')).toMatchObject({ status: 'agreed', value: 512 });
    const bad = p.disagreements.find((d) => d.kind === 'invalid-value')!;
    expect(bad).toMatchObject({ key: 'qemu.min-ram-MB', blocking: true, values: [{ image: 'a', value: 'lots' }] });
    expect(bad.message).toMatch(/^a: key "qemu\.min-ram-MB".*integer/);
    expect(p.disagreements.find((d) => d.kind === 'unknown-key')).toMatchObject({ key: 'qemu.colour', blocking: false });
    expect(p.blocked).toBe(true);
  });

  it('a stored string that is not a JSON object blocks, naming the image', () => {
    const p = planImport([{ label: 'a', text: '[1,2]', from: 'base' }]);
    expect(p.disagreements).toMatchObject([{ key: null, kind: 'unreadable', blocking: true, values: [{ image: 'a', value: '[1,2]', source: 'base' }] }]);
    expect(p.disagreements[0]!.message).toContain('a (stored on base)');
  });

  it('refuses the same image twice', () => {
    expect(() => planImport([img('a', {}), img('a', {})])).toThrow(/image a is given twice/);
  });

  it('renders settings, then disagreements, with values and sources', () => {
    const p = planImport([img('a', { 'qemu.arch': 'x86_64', 'qemu.machine-types': ['q35'] }, 'base'), img('b', { 'qemu.arch': 'aarch64' })]);
    const text = renderPlan(p);
    expect(text.indexOf('Proposed settings:')).toBeLessThan(text.indexOf('Disagreements (1, 1 blocking):'));
    expect(text).toContain('machine type [qemu.machine-types]: "q35" (accepted by all: ["q35"])');
    expect(text).toContain('CPU architecture [qemu.arch]: NO VALUE (conflict, see below)');
    expect(text).toContain('      a: "x86_64" (inherited from base)\n      b: "aarch64"\n');
    expect(text).toContain('Plan: BLOCKED');
  });
});
