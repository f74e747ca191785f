// vhd-util wrappers against a real vhd-util: $SM_VHD_UTIL when set (e.g. blktap's
// /usr/bin/vhd-util), else this package's bin/vhd-util (needs `npx tsc -p
// tsconfig.build.json` first). Not skipped when the tool is missing: it fails.
import { access, constants, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/sdk/env.js';
import { ToolError, recordToolCalls, runTool } from '../../src/sdk/tools/run.js';
import * as vhd from '../../src/sdk/tools/vhd-util.js';

const MiB = 1024 * 1024;
const TOOL = process.env['SM_VHD_UTIL'] || join(PACKAGE_ROOT, 'bin', 'vhd-util');
let dir: string;
let savedEnv: string | undefined;
const p = (name: string) => join(dir, name);
const ALL: vhd.VhdQueryField[] = ['virtualSize', 'physicalSize', 'parent', 'hidden', 'marker', 'depth', 'allocatedBlocks', 'maxResizeSize'];

/** Does this vhd-util implement `key`? (ours does not; blktap's does) */
const SUPPORTS_KEY = await (async () => {
  const r = await runTool([TOOL, 'key', '-p', '-n', '/nonexistent.vhd'], { okExitCodes: Array.from({ length: 256 }, (_, i) => i) }).catch(() => null);
  return r !== null && !/invalid COMMAND key/.test(r.stderr);
})();

/**
 * Put data into every block of a child: blktap's `fill` (copies the chain's content
 * into the child); a vhd-util without `fill` (ours) must offer the smapi-ts `write`
 * extension instead — written with a pattern over the whole disk.
 */
async function allocateAllBlocks(path: string, size: number): Promise<void> {
  const fill = await runTool([TOOL, 'fill', '-n', path], { okExitCodes: Array.from({ length: 256 }, (_, i) => i) });
  if (fill.exitCode === 0 && !/invalid COMMAND fill/.test(fill.stderr)) return;
  const data = join(dir, 'pattern.bin');
  await writeFile(data, Buffer.alloc(size, 0x5a));
  await runTool([TOOL, 'write', '-n', path, '-o', '0', '-f', data]);
}

beforeAll(async () => {
  await access(TOOL, constants.X_OK); // fails the suite, loudly, when the tool is missing
  savedEnv = process.env['SM_VHD_UTIL'];
  process.env['SM_VHD_UTIL'] = TOOL;
  dir = await mkdtemp(join(tmpdir(), 'smapi-ts-vhd-util-'));
});

afterAll(async () => {
  if (savedEnv === undefined) delete process.env['SM_VHD_UTIL'];
  else process.env['SM_VHD_UTIL'] = savedEnv;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`vhd-util wrappers (real: ${TOOL})`, () => {
  it('create + query: every field of an empty 10 MiB base', async () => {
    const rec = recordToolCalls();
    try {
      await vhd.create({ path: p('base.vhd'), sizeMiB: 10 });
    } finally {
      rec.stop();
    }
    expect(rec.argvs()).toEqual([[TOOL, 'create', '--debug', '-n', p('base.vhd'), '-s', '10']]);
    const q = await vhd.query({ path: p('base.vhd'), fields: ALL });
    expect(q).toMatchObject({ virtualSizeMiB: 10, parent: null, hidden: 0, marker: 0, depth: 1, allocatedBlocks: 0, maxResizeSizeMiB: 10 });
    expect(q.physicalSize).toBeGreaterThan(512);
  });

  it('read -p: a base is a Dynamic disk without locators', async () => {
    const h = await vhd.readHeaders({ path: p('base.vhd') });
    expect(h.diskType).toBe('Dynamic');
    expect(h.decodedName).toBeNull();
    expect(h.currentSize).toBe(10 * MiB);
    expect(h.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('snapshot: the child points at the base (query -p resolved, read -p header + locator)', async () => {
    await vhd.snapshot({ path: p('child.vhd'), parent: p('base.vhd') });
    const q = await vhd.query({ path: p('child.vhd'), fields: ['virtualSize', 'physicalSize', 'allocatedBlocks', 'hidden', 'parent', 'depth'] });
    expect(q).toMatchObject({ virtualSizeMiB: 10, parent: p('base.vhd'), hidden: 0, allocatedBlocks: 0, depth: 2 });
    const h = await vhd.readHeaders({ path: p('child.vhd'), debug: false });
    expect(h.diskType).toBe('Differencing');
    expect(h.parentName).toBe('base.vhd');
    expect(h.decodedName).toBe('./base.vhd');
    expect(h.parentUuid).toBe((await vhd.readHeaders({ path: p('base.vhd') })).uuid);
  });

  it('scan -f: one typed entry per image, parent by header name; -c turns a bad file into an error entry', async () => {
    const entries = await vhd.scan({ pattern: p('*.vhd'), fast: true, continueOnError: true });
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
    expect(byName['base.vhd']).toMatchObject({ kind: 'vhd', capacity: 10 * MiB, hidden: 0, parent: null });
    expect(byName['child.vhd']).toMatchObject({ kind: 'vhd', capacity: 10 * MiB, hidden: 0, parent: 'base.vhd' });
    expect((byName['base.vhd'] as vhd.VhdScanImage).size).toBe((await stat(p('base.vhd'))).size);

    await writeFile(p('junk.vhd'), Buffer.alloc(4096, 7));
    try {
      const withJunk = await vhd.scan({ pattern: p('*.vhd'), fast: true, continueOnError: true });
      const junk = withJunk.find((e) => e.kind === 'error');
      expect(junk).toMatchObject({ kind: 'error', name: p('junk.vhd') });
      expect((junk as vhd.VhdScanError).error).toBeLessThan(0);
      // Without -c the first bad image fails the whole scan.
      await expect(vhd.scan({ files: [p('junk.vhd')], fast: true })).rejects.toBeInstanceOf(ToolError);
    } finally {
      await rm(p('junk.vhd'));
    }
  });

  it('set hidden: query -f and scan both show it', async () => {
    await vhd.set({ path: p('base.vhd'), field: 'hidden', value: 1 });
    expect(await vhd.query({ path: p('base.vhd'), fields: ['hidden'] })).toEqual({ hidden: 1 });
    const [base] = await vhd.scan({ files: [p('base.vhd')], fast: true });
    expect(base).toMatchObject({ kind: 'vhd', hidden: 1 });
    await vhd.set({ path: p('base.vhd'), field: 'hidden', value: 0 });
  });

  it('check: valid image, invalid file, missing file', async () => {
    expect(await vhd.check({ path: p('child.vhd') })).toMatchObject({ status: 'valid', exitCode: 0 });
    await writeFile(p('junk.bin'), Buffer.alloc(8192, 1));
    const bad = await vhd.check({ path: p('junk.bin') });
    expect(bad.status).toBe('invalid');
    expect(bad.exitCode).toBe(22);
    expect(bad.output).toContain('junk.bin appears invalid');
    expect(await vhd.check({ path: p('missing.vhd') })).toMatchObject({ status: 'unavailable', exitCode: 2 });
  });

  it('coalesce of an empty child copies 0 sectors', async () => {
    await vhd.create({ path: p('cbase.vhd'), sizeMiB: 4 });
    await vhd.snapshot({ path: p('cchild.vhd'), parent: p('cbase.vhd') });
    expect(await vhd.coalesce({ path: p('cchild.vhd') })).toEqual({ sectors: 0, bytes: 0 });
  });

  it('coalesce of a child with data: "Coalesced N sectors" parsed into sectors and bytes', async () => {
    await allocateAllBlocks(p('child.vhd'), 10 * MiB);
    expect((await vhd.query({ path: p('child.vhd'), fields: ['allocatedBlocks'] })).allocatedBlocks).toBe(5);
    const r = await vhd.coalesce({ path: p('child.vhd') });
    expect(r).toEqual({ sectors: (10 * MiB) / 512, bytes: 10 * MiB });
    expect((await vhd.query({ path: p('base.vhd'), fields: ['allocatedBlocks'] })).allocatedBlocks).toBe(5);
    // read -B: one bit per 2 MiB block, MSB first — all 5 blocks now allocated in the base.
    expect([...(await vhd.readBitmap({ path: p('base.vhd') }))]).toEqual([0b11111000]);
  });

  it('read -B of an empty 20 MiB image: 10 blocks → 2 zero bytes, raw', async () => {
    await vhd.create({ path: p('empty20.vhd'), sizeMiB: 20 });
    const bitmap = await vhd.readBitmap({ path: p('empty20.vhd') });
    expect(Buffer.isBuffer(bitmap)).toBe(true);
    expect([...bitmap]).toEqual([0, 0]);
  });

  it('modify -p re-points the child; modify -z kills its data', async () => {
    await vhd.create({ path: p('other.vhd'), sizeMiB: 10 });
    await vhd.modify({ path: p('child.vhd'), parent: p('other.vhd') });
    expect(await vhd.query({ path: p('child.vhd'), fields: ['parent'] })).toEqual({ parent: p('other.vhd') });
    await vhd.modify({ path: p('child.vhd'), killData: true });
    expect(await vhd.query({ path: p('child.vhd'), fields: ['allocatedBlocks'] })).toEqual({ allocatedBlocks: 0 });
  });

  it('modify -s moves the footer: scan size follows, query -s does not', async () => {
    const before = await vhd.query({ path: p('other.vhd'), fields: ['physicalSize'] });
    await vhd.modify({ path: p('other.vhd'), physicalSize: 4 * MiB });
    const [e] = await vhd.scan({ files: [p('other.vhd')], fast: true });
    expect(e).toMatchObject({ kind: 'vhd', size: 4 * MiB });
    expect(await vhd.query({ path: p('other.vhd'), fields: ['physicalSize'] })).toEqual(before);
  });

  it('resize: -f within the -S preallocation, -j journaled beyond it', async () => {
    await vhd.create({ path: p('pre.vhd'), sizeMiB: 10, maxSizeMiB: 40 });
    expect(await vhd.query({ path: p('pre.vhd'), fields: ['virtualSize', 'maxResizeSize'] })).toEqual({ virtualSizeMiB: 10, maxResizeSizeMiB: 40 });
    await vhd.resize({ path: p('pre.vhd'), sizeMiB: 30, fast: true });
    expect(await vhd.query({ path: p('pre.vhd'), fields: ['virtualSize'] })).toEqual({ virtualSizeMiB: 30 });
    await expect(vhd.resize({ path: p('pre.vhd'), sizeMiB: 20, fast: true })).rejects.toBeInstanceOf(ToolError);

    await vhd.resize({ path: p('pre.vhd'), sizeMiB: 100, journal: p('pre.journal') });
    expect(await vhd.query({ path: p('pre.vhd'), fields: ['virtualSize'] })).toEqual({ virtualSizeMiB: 100 });
    await expect(stat(p('pre.journal'))).rejects.toThrow(/ENOENT/);
    expect((await vhd.check({ path: p('pre.vhd') })).status).toBe('valid');
  });

  it('revert with a missing journal raises ToolError (exit 2)', async () => {
    const err = (await vhd.revert({ path: p('pre.vhd'), journal: p('none.journal') }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.exitCode).toBe(2);
    expect(err.command).toEqual([TOOL, 'revert', '--debug', '-n', p('pre.vhd'), '-j', p('none.journal')]);
  });

  it('repair leaves a valid image valid', async () => {
    await vhd.repair({ path: p('base.vhd') });
    expect((await vhd.check({ path: p('base.vhd') })).status).toBe('valid');
  });

  it.skipIf(!SUPPORTS_KEY)(`key -p prints none for an image without a key hash${SUPPORTS_KEY ? '' : ' (SKIPPED: this vhd-util has no `key` command)'}`, async () => {
    expect(await vhd.keyPrint({ path: p('base.vhd') })).toBeNull();
  });

  it('a failing create raises ToolError naming the command line and exit code', async () => {
    const bad = '/nonexistent-dir/x.vhd';
    const err = (await vhd.create({ path: bad, sizeMiB: 10 }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`${TOOL} create --debug -n ${bad} -s 10: exited with code 2`);
  });
});
