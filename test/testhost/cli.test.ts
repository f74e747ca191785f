// testhost/vmtest as a user runs it: one boot through the compiled CLI.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/sdk/env.js';

const vmtest = join(PACKAGE_ROOT, 'testhost', 'vmtest');

describe('testhost/vmtest', () => {
  it('is built (dist/src/testhost/cli.js)', () => {
    expect(existsSync(join(PACKAGE_ROOT, 'dist', 'src', 'testhost', 'cli.js')), 'run npx tsc -p tsconfig.build.json').toBe(true);
  });

  it('runs a command in the guest: stdout and stderr apart, exit status, --env, cwd', async () => {
    const r = await execa(vmtest, ['run', '--env', 'GREETING=hello world', '--', 'bash', '-c', 'echo "$GREETING from $PWD"; echo oops >&2; exit 7'], {
      cwd: PACKAGE_ROOT,
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(7);
    expect(r.stdout).toBe(`hello world from ${PACKAGE_ROOT}`);
    expect(r.stderr).toMatch(/^oops$/m);
  }, 900_000);

  it('explains usage errors without booting', async () => {
    const r = await execa(vmtest, ['run', '--timeout', 'soon', 'true'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--timeout soon: expected whole seconds > 0');
    const none = await execa(vmtest, ['frobnicate'], { reject: false });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('unknown sub-command "frobnicate"');
  });
});
