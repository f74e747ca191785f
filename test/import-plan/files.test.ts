// `smctl image-import-plan files=...` on real images made by qemu-img, with
// machine data set by the real `bin/image-meta` and by the library: a 3-deep
// qcow2 chain whose top inherits from its base, plus a VHD.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { changeKeys } from '../../src/sdk/image-meta/index.js';
import type { ImportPlan } from '../../src/toolstack/import-plan/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SMCTL = join(ROOT, 'bin', 'smctl');
const IMAGE_META = join(ROOT, 'bin', 'image-meta');

// The host may be loaded (parallel suites): each smctl call spawns node and a driver.
const SLOW = 180_000;

let dir: string | undefined;
beforeAll(() => {
  for (const f of ['dist/src/cli/smctl/main.js', 'dist/src/cli/image-meta/main.js', 'dist/src/toolstack/import-plan/plan.js'])
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is not built: run \`npx tsc -p tsconfig.build.json\` first`);
});
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function run(bin: string, args: string[]) {
  const r = await execa(process.execPath, [bin, ...args], { reject: false, cwd: dir, env: { SMCTL_DB: join(dir!, 'state.db') } });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function qemuImg(args: string[]): Promise<void> {
  await execa('qemu-img', args, { cwd: dir });
}

/** base <- mid <- top (qcow2), and data.vhd; paths absolute. */
async function images() {
  dir = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'import-plan-'));
  const p = (n: string) => join(dir!, n);
  await qemuImg(['create', '-q', '-f', 'qcow2', p('base.qcow2'), '64M']);
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', p('base.qcow2'), '-F', 'qcow2', p('mid.qcow2')]);
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', p('mid.qcow2'), '-F', 'qcow2', p('top.qcow2')]);
  await qemuImg(['create', '-q', '-f', 'vpc', p('data.vhd'), '32M']);
  return { base: p('base.qcow2'), mid: p('mid.qcow2'), top: p('top.qcow2'), vhd: p('data.vhd') };
}

async function setMeta(image: string, ...kv: string[]): Promise<void> {
  const r = await run(IMAGE_META, ['set', image, ...kv]);
  expect(r.exitCode, r.stderr).toBe(0);
}

async function plan(args: string[]): Promise<{ exitCode: number; plan: ImportPlan; stderr: string }> {
  const r = await run(SMCTL, ['image-import-plan', ...args, '--json']);
  return { exitCode: r.exitCode, plan: JSON.parse(r.stdout) as ImportPlan, stderr: r.stderr };
}

describe('smctl image-import-plan files=', () => {
  it('a key inherited through a 3-deep chain names the base as its source; the VHD agrees; exit 0', async () => {
    const im = await images();
    await setMeta(im.base, 'qemu.machine-types=["q35","pc"]', 'qemu.min-ram-MB=1024', 'qemu.arch=x86_64', 'com.example.build=42');
    await changeKeys({ path: im.vhd, format: 'vhd' }, { 'qemu.machine-types': ['pc', 'q35', 'i440fx'], 'qemu.min-ram-MB': 2048, 'qemu.arch': 'x86_64' });
    const r = await plan([`files=${im.top},${im.vhd}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.plan.images).toEqual([
      { label: im.top, from: im.base, keys: ['qemu.machine-types', 'qemu.min-ram-MB', 'qemu.arch', 'com.example.build'] },
      { label: im.vhd, from: im.vhd, keys: ['qemu.machine-types', 'qemu.min-ram-MB', 'qemu.arch'] },
    ]);
    const ram = r.plan.settings.find((s) => s.key === 'qemu.min-ram-MB')!;
    expect(ram).toMatchObject({ value: 2048, rule: 'maximum' });
    expect(ram.values).toEqual([
      { image: im.top, value: 1024, source: im.base },
      { image: im.vhd, value: 2048, source: im.vhd },
    ]);
    expect(r.plan.settings.find((s) => s.key === 'qemu.machine-types')).toMatchObject({ value: ['q35', 'pc'], choice: 'q35' });
    expect(r.plan.settings.find((s) => s.key === 'qemu.arch')).toMatchObject({ status: 'agreed', value: 'x86_64' });
    expect(r.plan.vendor).toEqual([{ key: 'com.example.build', image: im.top, value: 42, source: im.base }]);
    expect(r.plan.disagreements.map((d) => [d.key, d.kind, d.blocking])).toEqual([
      ['qemu.machine-types', 'differs', false],
      ['qemu.min-ram-MB', 'differs', false],
    ]);
    expect(r.plan.blocked).toBe(false);
  }, SLOW);

  it('the middle image\'s own value stops inheritance: the source named is mid, not base', async () => {
    const im = await images();
    await setMeta(im.base, 'qemu.min-ram-MB=1024');
    await setMeta(im.mid, 'qemu.min-ram-MB=3072');
    const r = await plan([`files=${im.top}`]);
    expect(r.plan.settings).toMatchObject([{ key: 'qemu.min-ram-MB', value: 3072, values: [{ image: im.top, value: 3072, source: im.mid }] }]);
  }, SLOW);

  it('readable output: settings, then disagreements; a blocking disagreement exits 1', async () => {
    const im = await images();
    await setMeta(im.base, 'qemu.machine-types=["q35","pc"]', 'qemu.arch=x86_64');
    await setMeta(im.vhd, 'qemu.machine-types=["virt"]', 'qemu.arch=aarch64');
    const r = await run(SMCTL, ['image-import-plan', `files=${im.top},${im.vhd}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('Error: the import plan is blocked by 2 disagreements between the images (listed above)');
    const out = r.stdout;
    expect(out).toContain(`  ${im.top}: 2 keys, inherited from ${im.base}\n`);
    expect(out.indexOf('Proposed settings:')).toBeLessThan(out.indexOf('Disagreements (2, 2 blocking):'));
    expect(out).toContain(`BLOCKING empty-intersection qemu.machine-types`);
    expect(out).toContain(`BLOCKING conflict qemu.arch`);
    expect(out).toContain(`      ${im.top}: "x86_64" (inherited from ${im.base})\n      ${im.vhd}: "aarch64"\n`);
    expect(out).toMatch(/Plan: BLOCKED/);
    // --json prints the same plan, and exits 1 as well.
    const j = await plan([`files=${im.top},${im.vhd}`]);
    expect(j.exitCode).toBe(1);
    expect(j.plan.blocked).toBe(true);
  }, SLOW);

  it('images without machine data: an empty plan, exit 0; format= is checked against the signature', async () => {
    const im = await images();
    const r = await run(SMCTL, ['image-import-plan', `files=${im.top},${im.vhd}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${im.vhd}: no machine data`);
    expect(r.stdout).toContain('(none: no disk states a registered key)');
    const f = await run(SMCTL, ['image-import-plan', `files=${im.top}`, 'format=qcow2']);
    expect(f.exitCode, f.stderr).toBe(0);
  }, SLOW);

  it.each([
    ['not an image', (d: string) => { const p = join(d, 'notes.txt'); writeFileSync(p, 'hello\n'.repeat(200)); return [`files=${p}`]; }, 1, (d: string) => `Error: ${join(d, 'notes.txt')} is not a qcow2 or VHD image (no signature found)`],
    ['a missing file', (d: string) => [`files=${join(d, 'gone.qcow2')}`], 1, (d: string) => `Error: cannot open ${join(d, 'gone.qcow2')}: no such file`],
    ['a format that does not match', (d: string) => [`files=${join(d, 'top.qcow2')}`, 'format=vhd'], 1, (d: string) => `Error: ${join(d, 'top.qcow2')} is a qcow2 image, not vhd`],
    ['an unknown format', (d: string) => [`files=${join(d, 'top.qcow2')}`, 'format=vmdk'], 1, () => 'Error: format "vmdk" is not supported; use qcow2, vhd or raw'],
    ['no images', () => [], 2, () => 'Error: image-import-plan needs files=<image>[,<image>...] and/or vdi-uuids=<uuid>[,<uuid>...]'],
    ['the same file twice', (d: string) => [`files=${join(d, 'top.qcow2')},${join(d, 'top.qcow2')}`], 2, (d: string) => `Error: '${join(d, 'top.qcow2')}' is given twice in parameter 'files'`],
    ['a bad VDI uuid', () => ['vdi-uuids=not-a-uuid'], 2, () => "Error: invalid UUID 'not-a-uuid' in parameter 'vdi-uuids'"],
  ])('refuses %s with a clear error naming the value', async (_what, args, code, msg) => {
    await images();
    const r = await run(SMCTL, ['image-import-plan', ...args(dir!)]);
    expect(r.exitCode).toBe(code);
    expect(r.stderr.startsWith(msg(dir!)), r.stderr).toBe(true);
    expect(r.stdout).toBe('');
  }, SLOW);

  it('help text lists the parameters', async () => {
    dir = mkdtempSync(join('/var/tmp', 'import-plan-'));
    const r = await run(SMCTL, ['help', 'image-import-plan']);
    expect(r.exitCode).toBe(0);
    for (const p of ['files=', 'format=', 'vdi-uuids=', '--json']) expect(r.stdout).toContain(p);
    const g = await run(SMCTL, ['help']);
    expect(g.stdout).toMatch(/\n  image-import-plan +Plan a VM from its disks' machine data/);
  }, SLOW);
});
