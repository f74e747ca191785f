// Where the time went (driver-call statistics in every report) and several saved
// reports shown together (`sm-conformance --report`), as the main job prints them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callStats } from '../../conformance/types.js';
import { BROKEN, CLI, PYSR, ROOT } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'conf-combined-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('driver-call statistics', () => {
  it('counts calls and their time per command', () => {
    const s = callStats([
      { command: 'vdi_create', durationMs: 100 },
      { command: 'sr_scan', durationMs: 30 },
      { command: 'vdi_create', durationMs: 50 },
    ]);
    expect(s).toEqual({ count: 3, totalMs: 180, byCommand: { vdi_create: { count: 2, totalMs: 150 }, sr_scan: { count: 1, totalMs: 30 } } });
  });

  it('a run reports every driver call it made, and prints where the time went', async () => {
    const r = await execa(CLI, ['--driver', PYSR, '--device-config', `location=${join(dir, 'sr-calls')}`, '--only', 'sr-lifecycle', '--json', join(dir, 'calls.json')], { reject: false });
    expect(r.exitCode, r.stdout).toBe(0);
    const { default: report } = await import(join(dir, 'calls.json'), { with: { type: 'json' } });
    // driver info, then the lifecycle: sr_create, sr_attach, ... each recorded.
    expect(report.calls.byCommand.sr_get_driver_info.count).toBe(1);
    expect(report.calls.byCommand.sr_create.count).toBeGreaterThanOrEqual(1);
    expect(report.calls.byCommand.sr_delete.count).toBeGreaterThanOrEqual(2); // refused while a VDI remains, then done
    const sum = Object.values(report.calls.byCommand as Record<string, { count: number }>).reduce((a, b) => a + b.count, 0);
    expect(report.calls.count).toBe(sum);
    expect(r.stdout).toMatch(new RegExp(`^${report.calls.count} driver calls: \\d+\\.\\d\\ds of the \\d+\\.\\d\\ds run, mean \\d+\\.\\d\\ds \\(most time: `, 'm'));
  }, 120_000);
});

describe('sm-conformance --report', () => {
  it('shows each saved report and a combined summary; a failure anywhere exits 1', async () => {
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    expect((await execa(CLI, ['--driver', PYSR, '--device-config', `location=${join(dir, 'sr-good')}`, '--only', 'driver-info', '--json', good], { reject: false })).exitCode).toBe(0);
    expect((await execa(CLI, ['--driver', join(BROKEN, 'DupformatSR'), '--device-config', `location=${join(dir, 'sr-bad')}`, '--only', 'driver-info', '--json', bad], { reject: false })).exitCode).toBe(1);

    const onlyGood = await execa(CLI, ['--report', good], { reject: false });
    expect(onlyGood.exitCode).toBe(0);
    expect(onlyGood.stdout).toMatch(/^== py: .*PySR/m);
    expect(onlyGood.stdout).toMatch(/^PASS {2}driver-info/m);
    expect(onlyGood.stdout).toMatch(/^py +1 +0 +0 +\d+\.\d\ds +1$/m);
    expect(onlyGood.stdout).toMatch(/^total +1 +0 +0 .*all passed \(skips are not passes\)$/m);

    const both = await execa(CLI, ['--report', good, `--report=${bad}`], { reject: false });
    expect(both.exitCode).toBe(1);
    expect(both.stdout).toMatch(/^dupformat +0 +1 +0 .*failed: driver-info$/m);
    expect(both.stdout).toMatch(/^total +1 +1 +0 .*FAILED$/m);
  }, 120_000);

  it('the same SR type reported twice (lvm on this host and in the test host) is told apart by file name', async () => {
    const here = join(dir, 'py.json');
    const guest = join(dir, 'py-guest.json');
    for (const [out, sr] of [[here, 'sr-here'], [guest, 'sr-guest']] as const) {
      expect((await execa(CLI, ['--driver', PYSR, '--device-config', `location=${join(dir, sr)}`, '--only', 'driver-info', '--json', out], { reject: false })).exitCode).toBe(0);
    }
    const r = await execa(CLI, ['--report', here, '--report', guest], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^py \(py\) +1 +0 +0 /m);
    expect(r.stdout).toMatch(/^py \(py-guest\) +1 +0 +0 /m);
    expect(r.stdout).toMatch(/^total +2 +0 +0 /m);
  }, 120_000);

  it('a missing or foreign report is a failure named in the summary, not a silent gap', async () => {
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, '{"hello": 1}');
    const missing = join(dir, 'nope.json');
    const r = await execa(CLI, ['--report', missing, '--report', foreign], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`no report: cannot read ${missing} (ENOENT)`);
    expect(r.stdout).toContain(`${foreign} is not an sm-conformance JSON report: driver:`);
    expect(r.stdout).toMatch(/^total +0 +0 +0 .*FAILED$/m);
  });
});

describe('testhost/conformance-suites.sh', () => {
  it('refuses to run outside the test host, and without a type', async () => {
    const script = join(ROOT, 'testhost/conformance-suites.sh');
    const outside = await execa(script, ['ext'], { reject: false, env: { SM_TESTHOST_GUEST: '' } });
    expect(outside.exitCode).toBe(2);
    expect(outside.stderr).toContain('run this inside the test host');
    const noType = await execa(script, ['--'], { reject: false, env: { SM_TESTHOST_GUEST: '1' } });
    expect(noType.exitCode).toBe(2);
    expect(noType.stderr).toContain('usage:');
  });
});
