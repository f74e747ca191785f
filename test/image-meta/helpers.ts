// Scratch directories and real-tool helpers for the image-meta tests.
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'image-meta');

export function tmpDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'image-meta-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function qemuImg(args: string[]): Promise<string> {
  const r = await execa('qemu-img', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`qemu-img ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

export async function qemuIo(path: string, cmds: string[]): Promise<void> {
  const r = await execa('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), path], { reject: false });
  if (r.exitCode !== 0 || /error|failed/i.test(r.stderr + r.stdout)) throw new Error(`qemu-io ${cmds.join('; ')} failed: ${r.stderr}${r.stdout}`);
}

/** `qemu-img check`: asserts the image is clean (exit 0). */
export async function checkClean(path: string, format = 'qcow2'): Promise<void> {
  await qemuImg(['check', '-f', format, path]);
}

/** Fingerprint of a file (or "absent"), to prove a refused command changed nothing. */
export function fingerprint(path: string): string {
  return existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : 'absent';
}

/** A qemu-io holding `path` open read-write until stop() (a running VM's view of the image). */
export async function holdOpen(path: string): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const proc = spawn('qemu-io', ['-f', 'qcow2', path], { stdio: ['pipe', 'pipe', 'pipe'] });
  await new Promise<void>((res, rej) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('qemu-io>')) res();
    });
    proc.on('exit', (c) => rej(new Error(`qemu-io exited early (${c})`)));
    proc.stdin!.write('\n');
  });
  return {
    proc,
    stop: async () => {
      const done = new Promise((r) => proc.on('close', r));
      proc.stdin!.end('quit\n');
      await done;
    },
  };
}

export async function runBin(args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number | null; signal: string | null; stdout: string; stderr: string }> {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('SM_FIST' in env)) delete e['SM_FIST'];
  const r = await execa(process.execPath, [BIN, ...args], { env: e, extendEnv: false, reject: false });
  return { exitCode: r.exitCode ?? null, signal: r.signal ?? null, stdout: String(r.stdout), stderr: String(r.stderr) };
}
