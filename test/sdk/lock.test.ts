// The per-SR lock across real processes: contention, SIGKILL, timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMethodCall, type XmlRpcValue } from '../../src/sdk/protocol/xmlrpc.js';
import { acquireLock, srLockPath } from '../../src/sdk/lock.js';
import { SRError } from '../../src/sdk/errors/index.js';
import { ensureBuilt, pythonLoads, ROOT, SR_UUID, xapiParams } from './helpers.js';

const FIXTURE = join(ROOT, 'test/sdk/fixtures/test-driver.mjs');
let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'sdk-lock-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scan(marker: string, sleepMs: number) {
  const params = { ...xapiParams('sr_scan'), device_config: { marker, sleep: String(sleepMs) } };
  return execa('node', [FIXTURE, encodeMethodCall('sr_scan', [params as XmlRpcValue])], {
    env: { SM_LOG_FILE: join(dir, 'SMlog'), SM_LOCK_DIR: join(dir, 'lock') },
    reject: false,
  });
}

async function waitFor(pred: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : []);

describe('SR lock', () => {
  it('a second exclusive call waits until the first is done', async () => {
    const marker = join(dir, 'contend');
    const first = scan(marker, 1500);
    await waitFor(() => lines(marker).length >= 1);
    const second = scan(marker, 0);
    const [a, b] = await Promise.all([first, second]);
    expect(a.exitCode).toBe(0);
    expect(b.exitCode).toBe(0);
    const l = lines(marker).map((x) => x.split(' ').slice(0, 2).join(' '));
    expect(l).toEqual([`start ${first.pid}`, `end ${first.pid}`, `start ${second.pid}`, `end ${second.pid}`]);
  });

  it('a holder killed with SIGKILL releases the lock', async () => {
    const marker = join(dir, 'killed');
    const holder = scan(marker, 60_000);
    await waitFor(() => lines(marker).length >= 1);
    holder.kill('SIGKILL');
    await holder;
    const nextCall = scan(marker, 0);
    const next = await nextCall;
    // A nil answer, not LockErr after the fixture's 3 s lock timeout: the kernel dropped the dead holder's lock.
    expect(await pythonLoads(next.stdout)).toEqual({ params: [null], method: null });
    expect(lines(marker).slice(-2)).toEqual([`start ${nextCall.pid} locked`, `end ${nextCall.pid}`]);
  });

  it('waiting longer than the timeout is LockErr (37) naming the lock file', async () => {
    const marker = join(dir, 'timeout');
    const holder = scan(marker, 8000);
    await waitFor(() => lines(marker).length >= 1);
    const waiter = await scan(marker, 0);
    holder.kill('SIGKILL');
    await holder;
    const decoded = await pythonLoads(waiter.stdout);
    expect(decoded).toMatchObject({ fault: { faultCode: 37 } });
    const text = (decoded as { fault: { faultString: string } }).fault.faultString;
    expect(text).toContain('The lock/unlock request failed [opterr=');
    expect(text).toContain(join(dir, 'lock', SR_UUID, 'sr'));
    expect(text).toContain('gave up after 3 s');
  });

  it('in one process: a second acquire of the same file waits and fails; release frees it', () => {
    const path = join(dir, 'inproc', 'sr');
    const first = acquireLock(path, 100);
    expect(() => acquireLock(path, 200)).toThrow(SRError);
    first.release();
    const again = acquireLock(path, 100);
    again.release();
  });

  it("excludes sm's own lock (an fcntl write lock over the whole file), both ways", async () => {
    const path = join(dir, 'interop', 'sr');
    // Like sm's WriteLock: F_SETLK(W) with F_WRLCK, start 0, length 0 (the whole file).
    const holdPy = `
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
`;
    const held = acquireLock(path, 100);
    const tryPy = await execa('python3', ['-c', 'import fcntl,sys\nf=open(sys.argv[1],"a+")\ntry:\n  fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); print("got")\nexcept OSError: print("busy")', path]);
    expect(tryPy.stdout).toBe('busy');
    held.release();
    const py = execa('python3', ['-c', holdPy, path, '3']);
    await new Promise<void>((resolve) => py.stdout!.once('data', () => resolve()));
    expect(() => acquireLock(path, 300)).toThrow(/held by another process/);
    await py;
    acquireLock(path, 100).release();
  });

  it('refuses an SR uuid that would leave the lock directory', () => {
    expect(() => srLockPath('../../etc')).toThrow(/not a UUID/);
  });
});
