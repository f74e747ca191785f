// bin/image-meta end to end (the compiled CLI, real images): get, set, unset,
// dump with sources through 3-deep qcow2 and VHD chains and a raw base, --help
// on every command, exit codes, VDI addressing on a file SR, and bad input
// refused with a clear message and the image's bytes unchanged.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opsFor } from '../../src/sdk/formats/index.js';
import type { ImageFormat } from '../../src/driver-info.js';
import { MAX_VALUE_BYTES, sidecarPath } from '../../src/sdk/image-meta/index.js';
import { fingerprint, qemuImg, ROOT, runBin, tmpDir } from './helpers.js';

let t: ReturnType<typeof tmpDir> | undefined;
beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/src/cli/image-meta/main.js'))) throw new Error('dist is not built: run `npx tsc -p tsconfig.build.json` first');
});
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

const MiB = 1024 * 1024;

/** base → mid → top, all of `format` (VHD via vhd-util, qcow2 via qemu-img). */
async function chain3(dir: string, format: 'qcow2' | 'vhd'): Promise<[string, string, string]> {
  const ops = opsFor(format);
  const [base, mid, top] = ['base', 'mid', 'top'].map((n) => join(dir, `${n}.${format}`)) as [string, string, string];
  await ops.create(base, 16 * MiB);
  await ops.snapshot({ path: base, format }, mid);
  await ops.snapshot({ path: mid, format }, top);
  return [base, mid, top];
}

async function ok(args: string[]): Promise<string> {
  const r = await runBin(args);
  if (r.exitCode !== 0) throw new Error(`image-meta ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

describe.each(['qcow2', 'vhd'] as const)('a 3-deep %s chain', (format) => {
  it('inherits from the nearest own value, which stops inheritance (even {}); dump shows sources', async () => {
    t = tmpDir();
    const [base, mid, top] = await chain3(t.dir, format);
    expect((await runBin(['get', top])).exitCode).toBe(3);
    await ok(['set', base, 'qemu.machine-types=["q35","pc"]', 'qemu.min-ram-MB=1024']);
    expect(JSON.parse(await ok(['get', top]))).toEqual({ 'qemu.machine-types': ['q35', 'pc'], 'qemu.min-ram-MB': 1024 });
    expect(await ok(['get', top, 'qemu.min-ram-MB'])).toBe('1024');
    expect((await runBin(['get', top, '--own'])).exitCode).toBe(3);
    const dump = await ok(['dump', top]);
    expect(dump).toContain(`from:  ${base} (inherited, 2 levels up)`);
    expect(dump).toContain(`qemu.min-ram-MB = 1024    [${base}]`);
    expect(dump).toMatch(new RegExp(`  0 ${top} \\(${format}, (qcow2-header|sidecar)\\): inherits`));
    expect(dump).toMatch(/\* 2 .*base\..*own/);
    // set on the middle image: it gets its own copy (effective + change); top follows it.
    await ok(['set', mid, 'com.example.stage=2']);
    const j = JSON.parse(await ok(['dump', top, '--json']));
    expect(j.from.path).toBe(mid);
    expect(j.depth).toBe(1);
    expect(j.sources).toEqual({ 'qemu.machine-types': mid, 'qemu.min-ram-MB': mid, 'com.example.stage': mid });
    expect(j.chain.map((c: { own: string | null }) => c.own !== null)).toEqual([false, true, true]);
    // {} is a value: it stops inheritance.
    await ok(['set', top, '--json', '{}']);
    expect(await ok(['get', top])).toBe('{}');
    expect((await runBin(['get', top, 'qemu.min-ram-MB'])).exitCode).toBe(3);
    // unset --own: inherit again.
    await ok(['unset', top, '--own']);
    expect(JSON.parse(await ok(['get', top]))['com.example.stage']).toBe(2);
    // unset a key: the image's own value without it.
    await ok(['unset', mid, 'qemu.min-ram-MB']);
    expect(JSON.parse(await ok(['get', top]))).toEqual({ 'qemu.machine-types': ['q35', 'pc'], 'com.example.stage': 2 });
    expect(JSON.parse(await ok(['get', base]))['qemu.min-ram-MB']).toBe(1024);
    if (format === 'qcow2') await qemuImg(['check', top]);
  });
});

it('a qcow2 or VHD child of a raw base inherits the raw image\'s sidecar value', async () => {
  t = tmpDir();
  const raw = join(t.dir, 'base.raw');
  await opsFor('raw').create(raw, 16 * MiB);
  await ok(['set', raw, 'qemu.arch=x86_64']);
  expect(existsSync(sidecarPath(raw))).toBe(true);
  for (const f of ['qcow2', 'vhd'] as ImageFormat[]) {
    const child = join(t.dir, `child.${f}`);
    await opsFor(f).snapshot({ path: raw, format: 'raw' }, child);
    expect(await ok(['get', child, 'qemu.arch'])).toBe('"x86_64"');
  }
});

describe('bad input: clear errors, exit 1, nothing changed', () => {
  const cases: [string, string[], RegExp][] = [
    ['invalid JSON', ['--json', '{"qemu.arch": x86}'], /invalid JSON at character 14/],
    ['duplicate keys', ['--json', '{"com.example.a":1,"com.example.a":1}'], /duplicate key "com\.example\.a".*unique/],
    ['an empty key', ['--json', '{"":1}'], /empty key.*non-empty/],
    ['an unregistered qemu. key', ['qemu.colour=blue'], /"qemu\.colour".*not in the key registry/],
    ['a key without a vendor prefix', ['colour=blue'], /"colour" is neither a registered "qemu\." key nor starts with a reverse-dotted vendor prefix/],
    ['a wrongly typed value', ['qemu.min-ram-MB=lots'], /"qemu\.min-ram-MB".*integer/],
    ['an oversize value', ['--json', `{"com.example.pad":"${'x'.repeat(MAX_VALUE_BYTES)}"}`], new RegExp(`at most ${MAX_VALUE_BYTES} bytes`)],
    ['the same key twice on the command line', ['com.example.a=1', 'com.example.a=2'], /"com\.example\.a" is given twice/],
  ];
  it.each(['qcow2', 'vhd', 'raw'] as const)('%s image', async (format) => {
    t = tmpDir();
    const p = join(t.dir, `disk.${format}`);
    await opsFor(format).create(p, 8 * MiB);
    await ok(['set', p, 'qemu.min-ram-MB=512']);
    const before = [fingerprint(p), fingerprint(sidecarPath(p))];
    for (const [what, args, msg] of cases) {
      const r = await runBin(['set', p, ...args]);
      expect(r.exitCode, what).toBe(1);
      expect(r.stderr, what).toMatch(msg);
      expect([fingerprint(p), fingerprint(sidecarPath(p))], what).toEqual(before);
    }
    expect(await ok(['get', p])).toBe('{"qemu.min-ram-MB":512}');
  });

  it('a file that is not an image is refused and left alone; raw needs a name or --format raw', async () => {
    t = tmpDir();
    const p = join(t.dir, 'notes.txt');
    writeFileSync(p, 'hello');
    const before = fingerprint(p);
    for (const cmd of [['get', p], ['set', p, 'com.example.a=1'], ['dump', p]]) {
      const r = await runBin(cmd);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/notes\.txt is not a qcow2 or VHD image.*--format raw/);
    }
    expect(fingerprint(p)).toBe(before);
    expect(existsSync(sidecarPath(p))).toBe(false);
    const q = join(t.dir, 'disk.qcow2');
    await opsFor('qcow2').create(q, MiB);
    const r = await runBin(['get', q, '--format', 'vhd']);
    expect(r.stderr).toMatch(/is a qcow2 image, not vhd/);
    expect((await runBin(['get', join(t.dir, 'missing.qcow2')])).stderr).toMatch(/no such file/);
    const d = join(t.dir, 'dir.raw');
    mkdirSync(d);
    expect((await runBin(['get', d])).stderr).toMatch(/is a directory/);
  });
});

describe('usage', () => {
  it.each(['get', 'set', 'unset', 'dump'])('%s --help prints its usage and exits 0', async (cmd) => {
    const r = await runBin([cmd, '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: image-meta ${cmd} `));
    expect(r.stdout).toContain('--sr-path DIR --vdi UUID');
  });

  it('top-level help, unknown commands and options, missing arguments: exit 2 with a hint', async () => {
    const h = await runBin(['--help']);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toMatch(new RegExp(`at most\\s+${MAX_VALUE_BYTES} bytes`));
    const u = await runBin(['frob']);
    expect([u.exitCode, u.stderr]).toEqual([2, expect.stringMatching(/unknown command "frob"; commands: get, set, unset, dump/)]);
    const o = await runBin(['get', '--bogus', 'x']);
    expect(o.exitCode).toBe(2);
    expect(o.stderr).toMatch(/bogus.*\n.*image-meta get --help/);
    expect((await runBin(['set'])).stderr).toMatch(/name the image/);
    expect((await runBin(['get', '--sr-path', '/tmp'])).stderr).toMatch(/--sr-path and --vdi go together/);
    expect((await runBin(['get', '--sr-path', '/tmp', '--vdi', '../etc'])).stderr).toMatch(/is not a VDI uuid/);
  });

  it('addresses a VDI of a file SR by --sr-path and --vdi', async () => {
    t = tmpDir();
    const uuid = '0f5a3c2e-1b2d-4c5e-8f90-123456789abc';
    const p = join(t.dir, `${uuid}.vhd`);
    await opsFor('vhd').create(p, 8 * MiB);
    await ok(['set', '--sr-path', t.dir, '--vdi', uuid, 'qemu.firmware=["uefi"]']);
    expect(await ok(['get', p, 'qemu.firmware'])).toBe('["uefi"]');
    expect(existsSync(`${p}.image-meta.json`)).toBe(true);
    const missing = await runBin(['get', '--sr-path', t.dir, '--vdi', uuid.replace('0f', '1f')]);
    expect([missing.exitCode, missing.stderr]).toEqual([1, expect.stringMatching(/has no image file/)]);
  });
});
