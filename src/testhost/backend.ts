// The command lines that boot the guest. Pure functions, so that the exact argv
// is checked by a golden test.
import type { TestHostConfig } from './config.js';
import type { PreparedTestHost } from './prepare.js';

export interface BootPaths {
  /** Host directory shared writable with the guest (job in, results out). */
  ioDir: string;
  /** Where the guest's console (kernel messages, init errors) is written. */
  consoleLog: string;
}

/** QEMU's option syntax takes ',' as a separator; a literal comma is written ',,'. */
const qemuOpt = (s: string): string => s.replace(/,/g, ',,');

/** Kernel command-line words that reach /init as environment variables. */
function initParams(cfg: TestHostConfig): string[] {
  return [`TESTHOST_RWSIZE=${cfg.rwSize}`];
}

export function qemuArgv(host: PreparedTestHost, cfg: TestHostConfig, paths: BootPaths): string[] {
  for (const p of [paths.ioDir, host.kernel, host.initrd]) {
    if (/\s/.test(p)) throw new Error(`test-host path must not contain white space: ${JSON.stringify(p)}`);
  }
  return [
    'qemu-system-x86_64',
    // No usable KVM on the CI machine type (see docs/test-host.md): pure emulation.
    '-accel', 'tcg,thread=multi',
    '-cpu', 'max',
    '-m', String(cfg.memMiB),
    '-smp', String(cfg.cpus),
    '-nodefaults', '-no-user-config', '-no-reboot',
    '-display', 'none',
    '-chardev', `file,id=console,path=${qemuOpt(paths.consoleLog)}`,
    '-serial', 'chardev:console',
    '-kernel', host.kernel,
    '-initrd', host.initrd,
    // panic=-1: a guest panic reboots at once, and -no-reboot turns that into an exit.
    '-append', ['console=ttyS0', 'panic=-1', 'quiet', ...initParams(cfg)].join(' '),
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${qemuOpt(paths.ioDir)},mount_tag=testhostio,security_model=none`,
    '-device', 'virtio-rng-pci',
  ];
}

/** user-mode-linux: its stdout is the console (redirected to the console log by the caller). */
export function umlArgv(host: PreparedTestHost, cfg: TestHostConfig, paths: BootPaths): string[] {
  for (const p of [paths.ioDir, host.kernel, host.initrd]) {
    if (/[\s,]/.test(p)) throw new Error(`test-host path must not contain white space or commas: ${JSON.stringify(p)}`);
  }
  return [
    host.kernel,
    `mem=${cfg.memMiB}M`,
    `initrd=${host.initrd}`,
    `TESTHOST_IO=${paths.ioDir}`,
    ...initParams(cfg),
    'con0=null,fd:1', 'con=null', 'ssl=null',
    'quiet',
  ];
}

export function bootArgv(host: PreparedTestHost, cfg: TestHostConfig, paths: BootPaths): string[] {
  return cfg.backend === 'qemu' ? qemuArgv(host, cfg, paths) : umlArgv(host, cfg, paths);
}
