// Bad input and misbehaving drivers: every case exits non-zero with an error
// that names the problem, and leaves the database exactly as it was.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, dump, ok, type Scratch, scratch, smctl, withDb } from './helpers.js';

let s: Scratch;
let sr: string;
let vdi: string;

beforeAll(async () => {
  assertBuilt();
  s = scratch();
  sr = await ok(s, ['sr-create', 'type=py', 'name-label=errors', `device-config:location=${s.srDir}`]);
  vdi = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=v', 'virtual-size=1MiB']);
});
afterAll(() => s?.cleanup());

/** Whether a process is still running (a killed child may linger as a zombie until reaped). */
async function running(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    let state: string;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]!;
    } catch {
      return false;
    }
    if (state === 'Z' || state === 'X') return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

async function fails(args: string[], pattern: RegExp, env: Record<string, string> = {}, exitCode?: number) {
  const before = dump(s);
  const r = await smctl(s, args, env);
  expect(r.exitCode, `${args.join(' ')}\n${r.stderr}`).not.toBe(0);
  if (exitCode !== undefined) expect(r.exitCode).toBe(exitCode);
  expect(r.stderr).toMatch(pattern);
  expect(dump(s)).toEqual(before);
  return r;
}

describe('bad input', () => {
  const create = () => ['vdi-create', `sr-uuid=${sr}`, 'name-label=x'];
  it('unknown parameter', () => fails([...create(), 'virtual-size=1M', 'bogus=1'], /unknown parameter 'bogus' for vdi-create \(allowed: sr-uuid, /, {}, 2));
  it('missing parameter', () => fails(['vdi-create', `sr-uuid=${sr}`, 'virtual-size=1M'], /missing required parameter 'name-label' for vdi-create/, {}, 2));
  it('bad uuid', () => fails(['vdi-create', 'sr-uuid=not-a-uuid', 'name-label=x', 'virtual-size=1M'], /invalid UUID 'not-a-uuid' for parameter 'sr-uuid'/, {}, 2));
  it('unknown SR', () => {
    const u = randomUUID();
    return fails([...create(), 'virtual-size=1M'].map((a) => a.replace(sr, u)), new RegExp(`no SR with uuid ${u}[\\s\\S]*Error code: UUID_INVALID`), {}, 1);
  });
  it('unknown VDI', () => fails(['vdi-destroy', `uuid=${randomUUID()}`], /Error code: UUID_INVALID\nError parameters: VDI, /));
  it('bad size unit', () => fails([...create(), 'virtual-size=10XB'], /Failed to parse field 'virtual-size': expecting an integer \(possibly with suffix KiB, MiB, GiB, TiB\), got '10XB'/, {}, 2));
  it('negative size', () => fails([...create(), 'virtual-size=-1'], /got '-1'/, {}, 2));
  it('bad boolean', () => fails([...create(), 'virtual-size=1M', 'read-only=maybe'], /Failed to parse field 'read-only'.*got 'maybe'/, {}, 2));
  it('bad enum', () => fails([...create(), 'virtual-size=1M', 'type=disk'], /invalid value 'disk' for parameter 'type' \(allowed: user, system/, {}, 2));
  it('device-config with an empty key', () =>
    fails(['sr-create', 'type=py', 'name-label=x', 'device-config:=v'], /bad parameter syntax 'device-config:=v'/, {}, 2));
  it('device-config without a value', () =>
    fails(['sr-create', 'type=py', 'name-label=x', 'device-config:location'], /bad parameter syntax 'device-config:location': expected name=value/, {}, 2));
  it('map the command does not take', () =>
    fails([...create(), 'virtual-size=1M', 'device-config:x=y'], /unknown map parameter 'device-config:' for vdi-create \(allowed: sm-config:<key>=<value>/, {}, 2));
  it('unknown SR type', () =>
    fails(['sr-create', 'type=nosuch', 'name-label=x', 'device-config:location=/tmp'], /no SM plug-in for SR type 'nosuch'.*found: py[\s\S]*SR_UNKNOWN_DRIVER/));
  it('unknown command', () => fails(['vdi-frobnicate', 'uuid=x'], /unknown command 'vdi-frobnicate'/, {}, 2));
  it('unknown params= field', () => fails(['vdi-list', 'params=uuid,colour'], /unknown field 'colour' in params=/, {}, 2));
  it('unknown flag', () => fails(['vdi-create', '--minimal', `sr-uuid=${sr}`], /unknown option '--minimal' for vdi-create/, {}, 2));
  it('parameter given twice', () => fails([...create(), 'virtual-size=1M', 'virtual-size=2M'], /parameter 'virtual-size' given twice/, {}, 2));
  it('unplugged SR cannot be forgotten', () => fails(['sr-forget', `uuid=${sr}`], /SR_HAS_PBD/));
});

describe('misbehaving driver', () => {
  const create = ['vdi-create', `sr-uuid=SR`, 'name-label=bad', 'virtual-size=1M'];
  const cmd = () => create.map((a) => a.replace('SR', sr));

  it('garbage on stdout', async () => {
    await fails(cmd(), /failed to parse the backend response[\s\S]*stdout: this is not an XML-RPC response[\s\S]*Error code: SR_BACKEND_FAILURE/, {
      PYSR_MISBEHAVE: 'vdi_create:garbage',
    });
  });
  it('non-zero exit, with its stderr', () =>
    fails(cmd(), /non-zero exit \(3\)[\s\S]*stderr: PySR exiting with status 3 on purpose/, { PYSR_MISBEHAVE: 'vdi_create:exit' }));
  it('killed by a signal', () => fails(cmd(), /received signal: SIGKILL/, { PYSR_MISBEHAVE: 'vdi_create:kill' }));
  it('hangs past the timeout: killed, with its process group', async () => {
    const t0 = Date.now();
    const pidfile = join(s.dir, 'hang.pid');
    await fails(['--timeout', '1', ...cmd()], /timed out after 1 s \(killed\)/, { PYSR_MISBEHAVE: 'vdi_create:hang', PYSR_PIDFILE: pidfile });
    expect(Date.now() - t0).toBeLessThan(20_000);
    const pids = readFileSync(pidfile, 'utf8').trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(await running(pid), `process ${pid} survived`).toBe(false);
  });
  it('a fault: SR_BACKEND_FAILURE_<code> with the XE_SR_ERRORCODES name', () =>
    fails(cmd(), /fault 78 \(VDICreate\): VDI Creation failed \[opterr=told to fail\][\s\S]*Error code: SR_BACKEND_FAILURE_78\nError parameters: , VDI Creation failed \[opterr=told to fail\], /, {
      PYSR_MISBEHAVE: 'vdi_create:fault',
    }));
  it('Unimplemented (38) maps to xapi\'s own error, and names the fault', () =>
    fails(['vdi-update', `uuid=${vdi}`], /fault 38 \(Unimplemented\)[\s\S]*Error code: UNIMPLEMENTED_IN_SM_BACKEND/, { PYSR_MISBEHAVE: 'vdi_update:unimplemented' }));
  it('callbacks the driver made before failing are rolled back', async () => {
    const before = readdirSync(s.srDir).length;
    await fails(cmd(), /failed to parse the backend response/, { PYSR_MISBEHAVE: 'vdi_create:garbage-after-callback' });
    // The driver did create a file and db_introduce it; the database forgot both.
    expect(readdirSync(s.srDir).length).toBeGreaterThan(before);
  });
  it('a result of the wrong shape names the bad member', async () => {
    await fails(cmd(), /vdi_create result: member 'location': Invalid input: expected string/, { PYSR_MISBEHAVE: 'vdi_create:bad-result' });
    await fails(['vdi-attach', `uuid=${vdi}`], /vdi_attach result: member 'params_nbd'/, { PYSR_MISBEHAVE: 'vdi_attach:bad-result' });
  });
  it('a failed sr-create leaves no SR or PBD behind', async () => {
    const loc = join(s.dir, 'sr-fails');
    await fails(['sr-create', 'type=py', 'name-label=nope', `device-config:location=${loc}`], /SR_BACKEND_FAILURE_78/, {
      PYSR_MISBEHAVE: 'sr_attach:fault',
    });
    expect(existsSync(loc)).toBe(true); // sr_create ran; only the database is transactional
    withDb(s, (db) => expect(db.all('SR').map((r) => r['name_label'])).toEqual(['errors']));
  });
});

describe('help', () => {
  it('smctl help lists every command; help <command> and --help show its parameters', async () => {
    const all = await ok(s, ['help']);
    for (const c of ['sm-list', 'sr-create', 'vdi-create', 'vdi-attach', 'pbd-unplug']) expect(all).toContain(`  ${c} `);
    const one = await ok(s, ['help', 'vdi-create']);
    expect(one).toMatch(/^Usage: smctl vdi-create/);
    expect(one).toMatch(/virtual-size= \(required\)/);
    expect(one).toContain('sm-config:<key>=<value>');
    expect(await ok(s, ['vdi-create', '--help'])).toBe(one);
    const none = await smctl(s, []);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('Usage: smctl');
  });
});
