// The shared runner: exit codes, ToolError contents, timeouts, spawn failures, recorder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ToolError, formatCommand, onToolCall, recordToolCalls, runTool, runToolBinary } from '../../src/sdk/tools/run.js';

describe('runTool', () => {
  it('returns stdout, stderr and exit code of a successful command', async () => {
    const out = await runTool(['sh', '-c', 'printf out; printf err >&2', 'x']);
    expect(out).toMatchObject({ exitCode: 0, stdout: 'out', stderr: 'err', command: ['sh', '-c', 'printf out; printf err >&2', 'x'] });
  });

  it('passes arguments verbatim, never through a shell', async () => {
    const evil = '$(echo pwned); `id` > /dev/null "quoted" \'single\'';
    const out = await runTool(['printf', '%s', evil]);
    expect(out.stdout).toBe(evil);
  });

  it('raises ToolError naming the command line, exit code and stderr on failure', async () => {
    const err = await runTool(['sh', '-c', 'echo boom >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    const te = err as ToolError;
    expect(te.command).toEqual(['sh', '-c', 'echo boom >&2; exit 3']);
    expect(te.exitCode).toBe(3);
    expect(te.stderr).toBe('boom\n');
    expect(te.kind).toBe('exit');
    expect(te.message).toBe(`sh -c 'echo boom >&2; exit 3': exited with code 3: boom`);
  });

  it('accepts the exit codes a caller declares as success', async () => {
    const out = await runTool(['sh', '-c', 'exit 2'], { okExitCodes: [0, 2] });
    expect(out.exitCode).toBe(2);
  });

  it('kills a tool that exceeds its timeout', async () => {
    const started = Date.now();
    const err = (await runTool(['sleep', '10'], { timeoutMs: 200 }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/^sleep 10: timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports a missing program as a spawn failure', async () => {
    const err = (await runTool(['/nonexistent/tool', '-x']).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.kind).toBe('spawn');
    expect(err.exitCode).toBeNull();
    expect(err.message).toContain('/nonexistent/tool -x: could not be started (ENOENT)');
  });

  it('feeds input on stdin and runs with C locale', async () => {
    const out = await runTool(['sh', '-c', 'cat; printf " $LC_ALL"'], { input: 'hello' });
    expect(out.stdout).toBe('hello C');
  });

  it('returns raw bytes untouched in binary mode (including a final newline)', async () => {
    const out = await runToolBinary(['printf', '\\000\\377\\n']);
    expect([...out.stdout]).toEqual([0, 255, 10]);
  });

  it('records the argv of every call, successful or not', async () => {
    const rec = recordToolCalls();
    const seen: number[] = [];
    const off = onToolCall((c) => seen.push(c.exitCode ?? -1));
    try {
      await runTool(['true']);
      await runTool(['false']).catch(() => undefined);
    } finally {
      rec.stop();
      off();
    }
    await runTool(['true']);
    expect(rec.argvs()).toEqual([['true'], ['false']]);
    expect(seen).toEqual([0, 1]);
    expect(rec.calls.every((c) => c.durationMs >= 0)).toBe(true);
  });

  it('retries while the exit code is retriable, then succeeds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smapi-ts-retry-'));
    try {
      // Fails with 11 (EAGAIN) twice, then succeeds: a real process each time.
      const script = 'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; [ $n -ge 3 ] || exit 11; echo ok';
      const rec = recordToolCalls();
      const out = await runTool(['sh', '-c', script, 'x', join(dir, 'count')], { retry: { attempts: 5, delayMs: 10, exitCodes: [5, 11] } });
      rec.stop();
      expect(out.stdout).toBe('ok\n');
      expect(rec.calls.map((c) => c.exitCode)).toEqual([11, 11, 0]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives up after the last attempt, and never retries other exit codes', async () => {
    const policy = { attempts: 3, delayMs: 5, exitCodes: [5] };
    const rec = recordToolCalls();
    await expect(runTool(['sh', '-c', 'exit 5'], { retry: policy })).rejects.toMatchObject({ exitCode: 5 });
    await expect(runTool(['sh', '-c', 'exit 22'], { retry: policy })).rejects.toMatchObject({ exitCode: 22 });
    rec.stop();
    expect(rec.calls.map((c) => c.exitCode)).toEqual([5, 5, 5, 22]);
  });

  it('formats command lines for humans with shell-style quoting', () => {
    expect(formatCommand(['qemu-img', 'rebase', '-b', '', 'a b', "it's"])).toBe(`qemu-img rebase -b '' 'a b' 'it'\\''s'`);
  });
});
