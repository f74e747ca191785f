// bin/sm-install on a scratch plug-in directory: install, idempotence, both
// modes, foreign plug-ins, uninstall; the installed plug-ins answer as xapi calls them.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMethodCallXapiStyle, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { ensureBuilt, pythonLoads, ROOT, xapiParams } from '../sdk/helpers.js';

const BIN = join(ROOT, 'bin/sm-install');
const NAMES = ['EXTSR', 'FileSR', 'LVMSR', 'NFSSR'];
const dirs: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'sm-install-'));
  dirs.push(d);
  return d;
}

const sm = (args: string[], env: Record<string, string> = {}) => execa(BIN, args, { reject: false, env });

async function driverInfoName(plugin: string): Promise<string> {
  const r = await execa(plugin, [encodeMethodCallXapiStyle('sr_get_driver_info', [xapiParams('sr_get_driver_info') as XmlRpcValue])]);
  return ((await pythonLoads(r.stdout)) as { params: Array<{ name: string }> }).params[0]!.name;
}

describe('sm-install', () => {
  it('--help explains the options', async () => {
    const r = await sm(['--help']);
    expect(r.exitCode).toBe(0);
    for (const o of ['--dir', '--launcher', '--force', '--uninstall', '/opt/xensource/sm']) expect(r.stdout).toContain(o);
  });

  it('an unknown option is an error naming it', async () => {
    const r = await sm(['--bogus']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
  });

  it('installs symlinks named <Name>SR that xapi can run, idempotently; SM_DIR is the default', async () => {
    const dir = scratch();
    const first = await sm([], { SM_DIR: dir });
    expect(first.exitCode).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(NAMES);
    for (const n of NAMES) expect(lstatSync(join(dir, n)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'EXTSR'))).toBe(join(ROOT, 'drivers/ext/EXTSR'));
    const again = await sm(['--dir', dir]);
    expect(again.stdout.trim().split('\n')).toEqual(NAMES.map(() => expect.stringMatching(/^unchanged /)));
    expect(await driverInfoName(join(dir, 'EXTSR'))).toMatch(/EXT4/);
    expect(await driverInfoName(join(dir, 'NFSSR'))).toMatch(/NFS/);
  });

  it('--launcher writes small executable launchers that answer like the driver', async () => {
    const dir = scratch();
    expect((await sm(['--dir', dir, '--launcher'])).exitCode).toBe(0);
    const st = lstatSync(join(dir, 'LVMSR'));
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o111).toBe(0o111);
    expect(st.size).toBeLessThan(1024);
    expect(await driverInfoName(join(dir, 'LVMSR'))).toMatch(/LVM/);
    expect((await sm(['--dir', dir, '--launcher'])).stdout).not.toContain('installed');
    // Switching mode replaces our own plug-ins without --force.
    expect((await sm(['--dir', dir])).exitCode).toBe(0);
    expect(lstatSync(join(dir, 'LVMSR')).isSymbolicLink()).toBe(true);
  });

  it('refuses to replace a plug-in that is not ours unless --force, and --uninstall restores it', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'EXTSR'), '#!/usr/bin/python3\n# sm EXTSR\n', { mode: 0o755 });
    const refused = await sm(['--dir', dir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${join(dir, 'EXTSR')} exists and is a file, not an smapi-ts plug-in; use --force`);
    const forced = await sm(['--dir', dir, '--force']);
    expect(forced.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'EXTSR.smapi-ts-orig'), 'utf8')).toContain('# sm EXTSR');
    const un = await sm(['--dir', dir, '--uninstall']);
    expect(un.exitCode).toBe(0);
    expect(readdirSync(dir)).toEqual(['EXTSR']);
    expect(readFileSync(join(dir, 'EXTSR'), 'utf8')).toContain('# sm EXTSR');
    // Uninstalling again leaves the foreign plug-in alone.
    expect((await sm(['--dir', dir, '--uninstall'])).stdout).toContain(`left ${join(dir, 'EXTSR')} (not an smapi-ts plug-in)`);
  });
});
