// Command-line conventions of blktap's vhd-util: usage, exit codes, getopt parsing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { ok, tempDir, vhdUtil } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('cli');
});
afterAll(() => t.cleanup());

const TOP_USAGE =
  'usage: vhd-util COMMAND [OPTIONS]\n' +
  'COMMAND := { create | snapshot | query | read | set | repair | resize | fill | coalesce | modify | scan | check | revert | key | copy }\n';

describe('top level', () => {
  it('prints usage on stdout and exits 0 without a command', () => {
    const r = vhdUtil([]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(TOP_USAGE);
  });
  it('an unknown command also says so on stderr, exit 0', () => {
    const r = vhdUtil(['frobnicate']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(TOP_USAGE);
    expect(r.stderr).toBe('invalid COMMAND frobnicate\n');
  });
  it('--help lists our extensions as ours', () => {
    const r = vhdUtil(['--help']);
    expect(r.stdout.startsWith(TOP_USAGE)).toBe(true);
    expect(r.stdout).toMatch(/Extensions of this implementation \(not in blktap\)/);
    expect(r.stdout).toMatch(/write/);
    expect(r.stdout).toMatch(/export/);
  });
});

describe('-h and missing arguments', () => {
  const helpExit: Record<string, number> = {
    create: 22, read: 22, set: 22, repair: 22, resize: 22, coalesce: 22, modify: 22, revert: 22,
    snapshot: 0, query: 0, scan: 0, check: 0,
  };
  for (const [cmd, code] of Object.entries(helpExit)) {
    it(`${cmd} -h exits ${code} with usage on stdout; no arguments exits 22`, () => {
      const h = vhdUtil([cmd, '-h']);
      expect(h.status).toBe(code);
      expect(h.stdout).toMatch(/options:/);
      expect(h.stderr).toBe('');
      const none = vhdUtil([cmd]);
      expect(none.status).toBe(22);
      expect(none.stdout).toBe(h.stdout);
    });
  }
  it('extensions have help too, marked as not in blktap', () => {
    for (const cmd of ['write', 'export']) {
      const h = vhdUtil([cmd, '--help']);
      expect(h.status).toBe(0);
      expect(h.stdout).toMatch(/smapi-ts extension \(not in blktap\)/);
    }
  });
  it('a bad flag prints getopt’s message on stderr and exits 22', () => {
    const r = vhdUtil(['query', '-Z', '-n', 'x.vhd']);
    expect(r.status).toBe(22);
    expect(r.stderr).toBe("query: invalid option -- 'Z'\n");
    expect(r.stdout).toMatch(/^options: <-n name>/);
  });
  it('query -b (XCP-ng only) is rejected as upstream does', () => {
    expect(vhdUtil(['query', '-b', '-n', 'x.vhd']).status).toBe(22);
  });
  it('extra positional arguments are a usage error', () => {
    expect(vhdUtil(['query', '-n', 'x.vhd', '-v', 'extra']).status).toBe(22);
  });
});

describe('parsing', () => {
  it('accepts bundled flags, attached values, free order and --debug anywhere', () => {
    const f = join(t.dir, 'p.vhd');
    ok(['create', '--debug', `-n${f}`, '-s', '10']);
    expect(ok(['query', '-vsf', '--debug', '-n', f])).toBe('10\n3584\nhidden: 0\n');
    expect(ok(['query', '-n', f, '--debug', '-fsv'])).toBe('10\n3584\nhidden: 0\n');
  });
  it('-s abc becomes 0 as strtoull does', () => {
    const f = join(t.dir, 'zero.vhd');
    ok(['create', '-n', f, '-s', 'abc']);
    expect(ok(['query', '-n', f, '-v'])).toBe('0\n');
  });
});

describe('errors', () => {
  it('missing file: error on stdout, exit 2', () => {
    const r = vhdUtil(['query', '-n', join(t.dir, 'nonexist.vhd'), '-v']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(`error opening ${join(t.dir, 'nonexist.vhd')}: -2\n`);
  });
  it('not a VHD: exit 22', () => {
    const j = join(t.dir, 'junk.bin');
    writeFileSync(j, Buffer.alloc(4096, 7));
    const r = vhdUtil(['query', '-n', j, '-v']);
    expect(r.status).toBe(22);
    expect(r.stdout).toBe(`error opening ${j}: -22\n`);
  });
  it('create in a missing directory: stderr message, exit 2, nothing left behind', () => {
    const r = vhdUtil(['create', '-n', '/nonexistent/dir/x.vhd', '-s', '10']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('/nonexistent/dir/x.vhd: failed to create: -2\n');
  });
  it('set refuses unknown fields and values', () => {
    const f = join(t.dir, 's.vhd');
    ok(['create', '-n', f, '-s', '10']);
    let r = vhdUtil(['set', '-n', f, '-f', 'foo', '-v', '1']);
    expect(r.status).toBe(22);
    expect(r.stdout.startsWith('invalid field foo\n')).toBe(true);
    r = vhdUtil(['set', '-n', f, '-f', 'hidden', '-v', '256']);
    expect(r.status).toBe(22);
    expect(r.stdout.startsWith('invalid value 256\n')).toBe(true);
  });
  it('snapshot of a missing parent: exit 2, no file', () => {
    const c = join(t.dir, 'orphan.vhd');
    const r = vhdUtil(['snapshot', '-n', c, '-p', join(t.dir, 'missing.vhd')]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(existsSync(c)).toBe(false);
  });
});
