// `testhost/vmtest`: prepare the test-host cache, or run one command in a fresh guest.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { testHostConfig } from './config.js';
import { ensureTestHost, prepareTestHost } from './prepare.js';
import { copyOutTo, GUEST_OUT_DIR, GUEST_OUT_ENV } from './out-dir.js';
import { bootTestHost, describeFailure, NOT_REPORTED } from './run.js';

const USAGE = `usage:
  vmtest prepare [--force]     download the kernel and busybox, build the initramfs (cached)
  vmtest info                  show the cache (prepares it if missing or stale)
  vmtest run [--timeout SECONDS] [--env NAME=VALUE]... [--cwd DIR] [--out DIR] [--] CMD [ARG...]
                               boot a guest, run CMD as root in DIR (default: here), exit with its status
                               (${NOT_REPORTED} if the guest never reported); with --out, what the command
                               writes under $TESTHOST_OUT in the guest is copied to DIR on this host
environment: SM_TESTHOST_BACKEND (qemu|uml), SM_TESTHOST_DIR, SM_TESTHOST_MEM, SM_TESTHOST_CPUS,
             SM_TESTHOST_TIMEOUT, SM_TESTHOST_RWSIZE, SM_TESTHOST_KEEP`;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'prepare') {
    const { values } = parseArgs({ args: rest, options: { force: { type: 'boolean' } } });
    const cfg = testHostConfig();
    const host = values.force ? await prepareTestHost(cfg, log) : await ensureTestHost(cfg, log);
    log(`test host ready: ${host.dir} (${host.manifest.kernelPackage} ${host.manifest.kernelVersion})`);
    return 0;
  }
  if (cmd === 'info') {
    const host = await ensureTestHost(testHostConfig(), log);
    process.stdout.write(`${JSON.stringify({ kernel: host.kernel, initrd: host.initrd, ...host.manifest }, null, 2)}\n`);
    return 0;
  }
  if (cmd === 'run') {
    // Options end at `--` or at the first word that is not one: the rest is the command, untouched.
    const values: { timeout?: string; env: string[]; cwd?: string; out?: string } = { env: [] };
    let i = 0;
    for (; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === '--') { i++; break; }
      const m = /^--(timeout|env|cwd|out)(?:=(.*))?$/.exec(a);
      if (!m) {
        if (a.startsWith('--')) throw new UsageError(`run: unknown option ${a}`);
        break;
      }
      const v = m[2] ?? rest[++i];
      if (v === undefined) throw new UsageError(`run: ${a} needs a value`);
      if (m[1] === 'env') values.env.push(v);
      else if (m[1] === 'timeout') values.timeout = v;
      else if (m[1] === 'out') values.out = v;
      else values.cwd = v;
    }
    const positionals = rest.slice(i);
    if (positionals.length === 0) throw new UsageError('run: give the command to run');
    const env: Record<string, string> = {};
    for (const kv of values.env) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UsageError(`--env ${kv}: expected NAME=VALUE`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    let timeoutMs: number | undefined;
    if (values.timeout !== undefined) {
      if (!/^[1-9][0-9]*$/.test(values.timeout)) throw new UsageError(`--timeout ${values.timeout}: expected whole seconds > 0`);
      timeoutMs = Number(values.timeout) * 1000;
    }
    const config = timeoutMs === undefined ? {} : { timeoutMs };
    const outDir = values.out === undefined ? undefined : resolve(values.out);
    if (outDir !== undefined) env[GUEST_OUT_ENV] = GUEST_OUT_DIR;
    const o = await bootTestHost(positionals, {
      env,
      config,
      ...(values.cwd === undefined ? {} : { cwd: values.cwd }),
      log,
      onOutput: (s, chunk) => (s === 'stdout' ? process.stdout : process.stderr).write(chunk),
    }, outDir === undefined ? {} : copyOutTo(outDir));
    if (!o.reported) log(describeFailure(o, testHostConfig(config).timeoutMs));
    return o.exitCode;
  }
  throw new UsageError(cmd === undefined ? 'give a sub-command' : `unknown sub-command ${JSON.stringify(cmd)}`);
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      log(`vmtest: ${e.message}\n${USAGE}`);
      process.exitCode = 2;
    } else {
      log(`vmtest: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = NOT_REPORTED;
    }
  },
);
