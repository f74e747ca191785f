// A chain whose images are reached through a directory of symlinks with other
// names, as LVHD's /dev/<vg>/VHD-<uuid> links to /dev/dm-N (or, without
// device-mapper, to loop devices): the locators name the links, so parents are
// looked up in the directory the child was opened through, after blktap's own
// lookup in the child's canonical directory finds nothing.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';

const VHD_UTIL = join(import.meta.dirname, '../../bin/vhd-util');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const vhdUtil = (...args: string[]) => execa(VHD_UTIL, args);

it('a 3-deep chain opened through a symlink farm reads back what was written at every level', async () => {
  const d = mkdtempSync('/var/tmp/vhd-farm-');
  dirs.push(d);
  const made = join(d, 'made');
  const real = join(d, 'real');
  const farm = join(d, 'farm');
  for (const x of [made, real, farm]) mkdirSync(x);
  // Build the chain where the files carry the link names, so the locators say ./VHD-<n>.
  const at = (n: string) => join(made, `VHD-${n}`);
  await vhdUtil('create', '-n', at('base'), '-s', '16');
  const chunk = (byte: number) => Buffer.alloc(64 * 1024, byte);
  writeFileSync(join(d, 'a'), chunk(0xa1));
  writeFileSync(join(d, 'b'), chunk(0xb2));
  await vhdUtil('write', '-n', at('base'), '-o', '0', '-f', join(d, 'a'));
  await vhdUtil('snapshot', '-n', at('mid'), '-p', at('base'));
  await vhdUtil('write', '-n', at('mid'), '-o', String(4 * 1024 * 1024), '-f', join(d, 'b'));
  await vhdUtil('snapshot', '-n', at('leaf'), '-p', at('mid'));
  // Move the files under kernel-style names and reach them only through links.
  for (const [n, dev] of [['base', 'dm-3'], ['mid', 'dm-7'], ['leaf', 'dm-9']] as const) {
    renameSync(at(n), join(real, dev));
    symlinkSync(join(real, dev), join(farm, `VHD-${n}`));
  }
  const leaf = join(farm, 'VHD-leaf');
  expect((await vhdUtil('query', '-n', leaf, '-p')).stdout.trim()).toBe(join(farm, 'VHD-mid'));
  const out = join(d, 'out.raw');
  await vhdUtil('export', '-n', leaf, '-o', out);
  const raw = readFileSync(out);
  expect(raw.length).toBe(16 * 1024 * 1024);
  expect(raw.subarray(0, 64 * 1024).equals(chunk(0xa1))).toBe(true);
  expect(raw.subarray(4 * 1024 * 1024, 4 * 1024 * 1024 + 64 * 1024).equals(chunk(0xb2))).toBe(true);
  // Opened through its canonical name, the leaf's parent is not found, as with blktap.
  const direct = await execa(VHD_UTIL, ['query', '-n', join(real, 'dm-9'), '-p'], { reject: false });
  expect(direct.exitCode).not.toBe(0);
});
