// bin/sm-conformance as a user runs it (compiled code in dist/): help, usage
// errors, progress lines, the closing count line, exit status, JUnit and JSON.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { BROKEN, CLI, PYSR } from './helpers.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'conf-cli-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('sm-conformance CLI', () => {
  it('--help prints the usage and exits 0', async () => {
    const r = await execa(CLI, ['--help'], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Usage: sm-conformance --driver PATH');
  });

  it('exits 2 naming what is missing or bad', async () => {
    const noDriver = await execa(CLI, [], { reject: false });
    expect(noDriver.exitCode).toBe(2);
    expect(noDriver.stderr).toContain('--driver PATH is required');
    const badFormat = await execa(CLI, ['--driver', PYSR, '--format', 'vmdk'], { reject: false });
    expect(badFormat.exitCode).toBe(2);
    expect(badFormat.stderr).toMatch(/formats\.0: .*formats from vhd, raw, qcow2/);
    const badName = await execa(CLI, ['--driver', '/bin/true'], { reject: false });
    expect(badName.exitCode).toBe(2);
    expect(badName.stderr).toContain('"true" must end in SR');
    const wrongType = scratch();
    writeFileSync(join(wrongType, 'sr.yaml'), 'type: file\ndevice-config: {location: /tmp/x}\n');
    const mismatch = await execa(CLI, ['--driver', PYSR, '--config', join(wrongType, 'sr.yaml')], { reject: false });
    expect(mismatch.exitCode).toBe(2);
    expect(mismatch.stderr).toContain('is for type file but');
  });

  it('a passing run exits 0 and ends with the count line', async () => {
    const d = scratch();
    writeFileSync(join(d, 'sr.yaml'), `type: py\ndevice-config:\n  location: ${join(d, 'sr')}\n`);
    const r = await execa(CLI, ['--driver', PYSR, '--config', join(d, 'sr.yaml'), '--only', 'driver-info'], { reject: false });
    expect(r.stdout).toMatch(/^PASS {2}driver-info +\d+\.\d\ds$/m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 0 failed, 0 skipped');
    expect(r.exitCode).toBe(0);
  }, 120_000);

  it('a failing run exits 1, shows the evidence and writes JUnit and JSON', async () => {
    const d = scratch();
    const r = await execa(
      CLI,
      ['--driver', join(BROKEN, 'DupformatSR'), '--device-config', `location=${join(d, 'sr')}`, '--only', 'driver-info', '--junit', join(d, 'j.xml'), '--json', join(d, 'r.json')],
      { reject: false },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}driver-info .*supported_image_formats lists "raw" more than once/m);
    expect(r.stdout).toContain('<methodName>sr_get_driver_info</methodName>');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('0 passed, 1 failed, 0 skipped');
    const json = JSON.parse(readFileSync(join(d, 'r.json'), 'utf8'));
    expect(json.summary).toEqual({ passed: 0, failed: 1, skipped: 0 });
    expect(json.type).toBe('dupformat');
    expect(json.results[0].evidence.calls[0].command).toBe('sr_get_driver_info');
    const junit = readFileSync(join(d, 'j.xml'), 'utf8');
    expect(junit).toContain('<testcase classname="sm-conformance.dupformat" name="driver-info"');
    expect(junit).toContain('<failure message="driver info: supported_image_formats lists &quot;raw&quot; more than once"');
  }, 120_000);
});
