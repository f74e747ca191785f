// Golden command lines: every argv builder of every tool wrapper, compared with
// the fixtures in test/fixtures/tools/*.yaml. Needs no root and runs no tool.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import * as fsck from '../../src/sdk/tools/fsck.js';
import * as lvm from '../../src/sdk/tools/lvm.js';
import * as mkfs from '../../src/sdk/tools/mkfs.js';
import * as blkdiscard from '../../src/sdk/tools/blkdiscard.js';
import * as mount from '../../src/sdk/tools/mount.js';
import * as nfs from '../../src/sdk/tools/nfs.js';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tools');

const caseSchema = z
  .object({
    name: z.string(),
    builder: z.string(),
    opts: z.record(z.string(), z.unknown()),
    scope: z.record(z.string(), z.unknown()).optional(),
    argv: z.array(z.string()).optional(),
    throws: z.string().optional(),
  })
  .refine((c) => (c.argv === undefined) !== (c.throws === undefined), 'a case has exactly one of argv / throws');

type Module = Record<string, unknown>;
/** fixture file → the modules its `builder` names refer to ('' = no prefix). */
const SUITES: Record<string, Record<string, Module>> = {
  'qemu-img.yaml': { '': qemuImg },
  'vhd-util.yaml': { '': vhdUtil },
  'lvm.yaml': { '': lvm },
  'nfs.yaml': { '': nfs },
  'fs.yaml': { mkfs, fsck, mount, blkdiscard },
};

function resolve(modules: Record<string, Module>, builder: string): (...a: unknown[]) => string[] {
  const dot = builder.indexOf('.');
  const [prefix, fn] = dot < 0 ? ['', builder] : [builder.slice(0, dot), builder.slice(dot + 1)];
  const f = modules[prefix]?.[fn];
  if (typeof f !== 'function') throw new Error(`fixture names unknown builder ${builder}`);
  return f as (...a: unknown[]) => string[];
}

// vhd-util's path comes from the environment; pin it to the one sm runs.
let savedVhdUtil: string | undefined;
beforeAll(() => {
  savedVhdUtil = process.env['SM_VHD_UTIL'];
  process.env['SM_VHD_UTIL'] = '/usr/bin/vhd-util';
});
afterAll(() => {
  if (savedVhdUtil === undefined) delete process.env['SM_VHD_UTIL'];
  else process.env['SM_VHD_UTIL'] = savedVhdUtil;
});

for (const [file, modules] of Object.entries(SUITES)) {
  const cases = z.array(caseSchema).parse(parse(readFileSync(join(FIXTURES, file), 'utf8')));

  describe(`golden argv: ${file}`, () => {
    for (const c of cases) {
      it(c.name, () => {
        const build = resolve(modules, c.builder);
        const args = c.scope !== undefined ? [c.opts, c.scope] : [c.opts];
        if (c.throws !== undefined) {
          expect(() => build(...args)).toThrow(c.throws);
        } else {
          expect(build(...args)).toEqual(c.argv);
        }
      });
    }

    it('covers every argv builder the modules export', () => {
      const covered = new Set(cases.filter((c) => c.argv !== undefined).map((c) => c.builder));
      const builders = Object.entries(modules).flatMap(([prefix, m]) =>
        Object.keys(m)
          .filter((k) => k.endsWith('Argv') && typeof m[k] === 'function')
          .map((k) => (prefix ? `${prefix}.${k}` : k)),
      );
      expect(builders.length).toBeGreaterThan(0);
      expect(builders.filter((b) => !covered.has(b))).toEqual([]);
    });
  });
}

describe('golden argv: cross-cutting rules', () => {
  it('every qemu-img command line names the image format with -f (except measure --size)', () => {
    const cases = z.array(caseSchema).parse(parse(readFileSync(join(FIXTURES, 'qemu-img.yaml'), 'utf8')));
    for (const c of cases) {
      if (!c.argv || c.argv.includes('--size')) continue;
      expect(c.argv, c.name).toContain('-f');
      // commit's -b names the commit target (already open as a backing file), not a new backing file.
      const namesBacking = c.argv[1] !== 'commit' && c.argv.includes('-b') && c.argv[c.argv.indexOf('-b') + 1] !== '';
      if (namesBacking) expect(c.argv, c.name).toContain('-F');
      if (c.argv.includes('-B')) expect(c.argv, c.name).toContain('-F');
    }
  });

  it('LVM scope from SM_LVM_NO_DM: 1 adds --driverloaded n, 0 never does, other values are refused', () => {
    const saved = process.env['SM_LVM_NO_DM'];
    try {
      process.env['SM_LVM_NO_DM'] = '1';
      expect(lvm.scopeArgs({ devices: ['/dev/loop9'] })).toEqual(['--devices', '/dev/loop9', '--driverloaded', 'n']);
      process.env['SM_LVM_NO_DM'] = '0';
      expect(lvm.scopeArgs({ devices: ['/dev/loop9'] })).toEqual(['--devices', '/dev/loop9']);
      process.env['SM_LVM_NO_DM'] = 'yes';
      expect(() => lvm.scopeArgs()).toThrow(/SM_LVM_NO_DM="yes" is not allowed/);
      delete process.env['SM_LVM_NO_DM'];
      // Auto-detect: follows whether /dev/mapper/control can be opened on this host.
      const expected = lvm.deviceMapperAvailable() ? [] : ['--driverloaded', 'n'];
      expect(lvm.scopeArgs()).toEqual(expected);
    } finally {
      if (saved === undefined) delete process.env['SM_LVM_NO_DM'];
      else process.env['SM_LVM_NO_DM'] = saved;
    }
  });
});
