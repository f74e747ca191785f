// Boots the test host once and proves, one step per case, what the host kernel
// cannot do: LVM with activation, ext4 on an LV, the kernel NFS server with v3 and
// v4.x mounts; plus exit codes and isolation from the host.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assertStepPassed,
  loopPvScript,
  nfsServerScript,
  runStepsInTestHost,
  type StepsRun,
  type TestHostStep,
} from '../../src/testhost/index.js';

const probe = `th-probe-${randomUUID()}`;
const probePaths = [`/${probe}`, `/var/tmp/${probe}`, `${process.cwd()}/${probe}`];
/** 4 MiB that differ in every 64-byte line, so a fresh or shifted LV cannot match by accident. */
const PATTERN_4M = "seq -f '%063g' 0 65535";
const sha = (out: string): string => {
  const m = /^([0-9a-f]{64})\b/m.exec(out);
  if (!m?.[1]) throw new Error(`no sha256 in step output: ${JSON.stringify(out)}`);
  return m[1];
};

const steps: TestHostStep[] = [
  {
    name: 'environment',
    script: `
      echo "uid=$(id -u) cwd=$PWD udev=$DM_DISABLE_UDEV"
      test -e /dev/fd/0 && echo fd-ok
      ip -o link show lo | grep -q 'UP' && echo lo-up
      node -e 'console.log("node-" + process.versions.node.split(".")[0])'
      qemu-img --version | head -1`,
  },
  {
    name: 'lvm: create VG on a loop PV and an active LV',
    script: `
      pv=$(${loopPvScript('pv0', 256)})
      vgcreate -q VG_th "$pv" >&2
      lvcreate -q -y -n lv1 -L 64M VG_th >&2
      test -b "$(readlink -f /dev/VG_th/lv1)"
      lvs --noheadings -o lv_attr VG_th/lv1`,
  },
  {
    name: 'lvm: write 4 MiB pattern',
    script: `
      ${PATTERN_4M} > /run/pattern
      stat -c %s /run/pattern >&2
      dd if=/run/pattern of=/dev/VG_th/lv1 bs=1M oflag=direct conv=fsync status=none
      sha256sum < /run/pattern`,
  },
  { name: 'lvm: read back', script: 'dd if=/dev/VG_th/lv1 bs=1M count=4 iflag=direct status=none | sha256sum' },
  {
    name: 'lvm: lvchange -an removes the node',
    script: `
      lvchange -an VG_th/lv1 >&2
      if [ -e /dev/VG_th/lv1 ] || [ -e /dev/mapper/VG_th-lv1 ]; then echo "device node still present"; exit 1; fi
      lvs --noheadings -o lv_attr VG_th/lv1`,
  },
  {
    name: 'lvm: lvchange -ay brings it back with the data',
    script: `
      lvchange -ay VG_th/lv1 >&2
      test -b "$(readlink -f /dev/VG_th/lv1)"
      dd if=/dev/VG_th/lv1 bs=1M count=4 iflag=direct status=none | sha256sum`,
  },
  {
    name: 'lvm: lvremove',
    script: `
      lvremove -q -y VG_th/lv1 >&2
      if [ -e /dev/VG_th/lv1 ]; then echo "device node still present"; exit 1; fi
      lvs --noheadings -o lv_name VG_th`,
  },
  {
    name: 'ext4 on an LV',
    script: `
      lvcreate -q -y -n fs -L 64M VG_th >&2
      mkfs.ext4 -q /dev/VG_th/fs
      mkdir -p /mnt/fs
      mount /dev/VG_th/fs /mnt/fs
      echo "hello ext4" > /mnt/fs/greeting
      umount /mnt/fs
      mount /dev/VG_th/fs /mnt/fs
      cat /mnt/fs/greeting
      findmnt -n -o FSTYPE /mnt/fs
      umount /mnt/fs`,
  },
  {
    name: 'nfs: start the kernel server',
    script: `
      ${nfsServerScript(['/srv/export'])}
      showmount -e 127.0.0.1`,
  },
  {
    name: 'nfs: v3 write and read back',
    script: `
      th_nfs_mount 3 /srv/export /mnt/v3
      seq -f '%063g' 0 16383 > /mnt/v3/v3.dat
      umount /mnt/v3
      th_nfs_mount 3 /srv/export /mnt/v3
      awk '$2 == "/mnt/v3" {print $3, $4}' /proc/mounts
      sha256sum < /mnt/v3/v3.dat
      sha256sum < /srv/export/v3.dat`,
  },
  ...(['4.1', '4.2'] as const).map(
    (v): TestHostStep => ({
      name: `nfs: v${v} write and read back`,
      script: `
      th_nfs_mount ${v} /srv/export /mnt/v${v}
      awk '$2 == "/mnt/v${v}" {print $3, $4}' /proc/mounts
      seq -f '%063g' 0 16383 > /mnt/v${v}/v${v}.dat
      sync
      sha256sum < /mnt/v${v}/v${v}.dat
      sha256sum < /srv/export/v${v}.dat
      sha256sum < /mnt/v${v}/v3.dat`,
    }),
  ),
  { name: 'a failing command fails its step', script: 'echo before\nfalse\necho not-reached' },
  { name: 'exit status is reported', script: 'exit 7' },
  {
    name: 'isolation: write under /',
    script: probePaths.map((p) => `echo guest-was-here > ${p}\ncat ${p}`).join('\n'),
  },
  { name: 'runs after failures', script: 'echo still-running' },
];

describe('test host (one boot, one step per case)', () => {
  let run: StepsRun;
  beforeAll(async () => {
    run = await runStepsInTestHost(steps, { stepTimeoutMs: 120_000 });
    const timings = run.steps.map((s) => `${s.name}: ${s.durationMs} ms`).join('; ');
    console.log(`test host: boot-to-script ${run.bootSeconds} s, wall ${run.wallMs} ms; ${timings}`);
  }, 900_000); // under emulation on a busy 2-core machine this boot has taken 150 s

  it('runs as root in the caller cwd with udev disabled, /dev/fd, lo up, host binaries', () => {
    const out = assertStepPassed(run, 'environment').stdout;
    expect(out).toContain(`uid=0 cwd=${process.cwd()} udev=1`);
    expect(out).toContain('fd-ok');
    expect(out).toContain('lo-up');
    expect(out).toMatch(/^node-20$/m);
    expect(out).toMatch(/^qemu-img version \d/m);
  });

  it('lvcreate activates the LV and /dev/VG/LV appears', () => {
    const attr = assertStepPassed(run, 'lvm: create VG on a loop PV and an active LV').stdout.trim();
    expect(attr).toMatch(/^-wi-a-/);
  });

  it('4 MiB written to the LV reads back identical', () => {
    const written = assertStepPassed(run, 'lvm: write 4 MiB pattern');
    expect(written.stderr.trim()).toBe('4194304');
    expect(sha(assertStepPassed(run, 'lvm: read back').stdout)).toBe(sha(written.stdout));
  });

  it('lvchange -an removes the device node and marks the LV inactive', () => {
    const attr = assertStepPassed(run, 'lvm: lvchange -an removes the node').stdout.trim();
    expect(attr).toMatch(/^-wi-{7}$/);
  });

  it('lvchange -ay brings the node back with the data intact', () => {
    const before = sha(assertStepPassed(run, 'lvm: write 4 MiB pattern').stdout);
    expect(sha(assertStepPassed(run, 'lvm: lvchange -ay brings it back with the data').stdout)).toBe(before);
  });

  it('lvremove removes the LV and its node', () => {
    expect(assertStepPassed(run, 'lvm: lvremove').stdout).not.toMatch(/\blv1\b/);
  });

  it('ext4 on an LV: mkfs, mount, write, remount, read', () => {
    expect(assertStepPassed(run, 'ext4 on an LV').stdout).toBe('hello ext4\next4\n');
  });

  it('the kernel NFS server exports /srv/export on 127.0.0.1', () => {
    expect(assertStepPassed(run, 'nfs: start the kernel server').stdout).toMatch(/^\/srv\/export\s+127\.0\.0\.1$/m);
  });

  it('NFSv3: a file written through the mount reads back and is on the server', () => {
    const out = assertStepPassed(run, 'nfs: v3 write and read back').stdout.trim().split('\n');
    expect(out[0]).toMatch(/^nfs \S*vers=3\b/);
    expect(sha(out[1] ?? '')).toBe(sha(out[2] ?? ''));
  });

  it.each(['4.1', '4.2'])('NFSv%s: write and read back, and see the v3 file', (v) => {
    const v3 = assertStepPassed(run, 'nfs: v3 write and read back').stdout.trim().split('\n');
    const out = assertStepPassed(run, `nfs: v${v} write and read back`).stdout.trim().split('\n');
    expect(out[0]).toMatch(new RegExp(`^nfs4 \\S*vers=${v.replace('.', '\\.')}\\b`));
    expect(sha(out[1] ?? '')).toBe(sha(out[2] ?? ''));
    expect(sha(out[1] ?? '')).toBe(sha(v3[1] ?? '')); // same bytes as written through v3
    expect(sha(out[3] ?? '')).toBe(sha(v3[1] ?? ''));
  });

  it('a failing command fails its step (set -e) and a non-zero exit status propagates', () => {
    const failed = run.step('a failing command fails its step');
    expect(failed).toMatchObject({ ran: true, exitCode: 1, stdout: 'before\n' });
    expect(run.step('exit status is reported')).toMatchObject({ ran: true, exitCode: 7 });
    expect(() => assertStepPassed(run, 'exit status is reported')).toThrow(/exited 7/);
    expect(assertStepPassed(run, 'runs after failures').stdout).toBe('still-running\n');
  });

  it('files the guest writes under / do not reach the host', () => {
    const out = assertStepPassed(run, 'isolation: write under /').stdout;
    expect(out).toBe('guest-was-here\n'.repeat(probePaths.length));
    for (const p of probePaths) expect(existsSync(p), p).toBe(false);
  });
});
