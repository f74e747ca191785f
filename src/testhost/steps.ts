// Many test cases in one boot: each case is a named bash step; the guest records
// each step's exit status and output separately, so a test file asserts per case
// while paying the boot (10-15 s under TCG) once.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { checked } from './checked.js';
import { bootOrThrow, type BootOptions } from './run.js';

export interface TestHostStep {
  /** Unique name, used to look the result up. */
  name: string;
  /**
   * Bash run as root in the guest with `set -e -o pipefail` (the first failing
   * command fails the step) and the helpers of testhost/guest/lib.sh (th_loop_pv,
   * th_nfs_server_start, ...). Steps run in order in one guest, so a step sees
   * what earlier steps left (devices, mounts, files); shell variables do not carry
   * over (keep state in files, e.g. under /run/testhost).
   */
  script: string;
}

export interface StepResult {
  name: string;
  /** Exit status; 124 if the step hit stepTimeoutMs. Undefined if it never ran (stopOnFailure). */
  exitCode: number | undefined;
  ran: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface StepsOptions extends BootOptions {
  /** Skip the remaining steps after the first failure (default false: every step runs). */
  stopOnFailure?: boolean;
  /** Kill a step that runs longer than this (exit status 124). Default: no limit but the boot timeout. */
  stepTimeoutMs?: number;
}

export interface StepsRun {
  steps: StepResult[];
  /** The result of step `name`; throws if no such step was given. */
  step(name: string): StepResult;
  bootSeconds: number | undefined;
  wallMs: number;
}

const stepsSchema = z
  .array(z.object({ name: z.string().min(1, 'a step needs a name'), script: z.string() }))
  .min(1, 'give at least one step')
  .max(999, 'at most 999 steps per boot')
  .superRefine((steps, ctx) => {
    const seen = new Set<string>();
    for (const s of steps) {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', message: `step name ${JSON.stringify(s.name)} is used twice` });
      seen.add(s.name);
    }
  });

const STEP_PRELUDE = 'set -e -o pipefail\nsource /.testhost/lib.sh\n';
const num = (i: number): string => String(i).padStart(3, '0');

/** Runs `steps` in order in one boot and returns each one's result. Throws TestHostError if the guest fails to report. */
export async function runStepsInTestHost(steps: readonly TestHostStep[], opts: StepsOptions = {}): Promise<StepsRun> {
  const parsed = checked(stepsSchema, steps, 'test-host steps');
  const timeoutS = opts.stepTimeoutMs === undefined ? 0 : Math.max(1, Math.ceil(opts.stepTimeoutMs / 1000));
  const o = await bootOrThrow(['bash', '/.testhost/steps.sh'], opts, {
    prepare: async (io) => {
      const dir = join(io, 'steps');
      await mkdir(dir);
      await writeFile(join(dir, 'options'), `STOP_ON_FAILURE=${opts.stopOnFailure ? 1 : 0}\nSTEP_TIMEOUT=${timeoutS}\n`);
      for (const [i, s] of parsed.entries()) await writeFile(join(dir, `${num(i)}.sh`), STEP_PRELUDE + s.script + '\n');
    },
    collect: async (io) => {
      const dir = join(io, 'steps');
      const lines = (await readFile(join(dir, 'results'), 'utf8').catch(() => '')).split('\n');
      const byIndex = new Map<number, { rc: number; ms: number }>();
      for (const l of lines) {
        const m = /^(\d{3}) (\d+) ([\d.]+) ([\d.]+)$/.exec(l);
        if (m) byIndex.set(Number(m[1]), { rc: Number(m[2]), ms: Math.round((Number(m[4]) - Number(m[3])) * 1000) });
      }
      const read = (p: string): Promise<string> => readFile(join(dir, p), 'utf8').catch(() => '');
      return Promise.all(
        parsed.map(async (s, i): Promise<StepResult> => {
          const r = byIndex.get(i);
          return {
            name: s.name,
            exitCode: r?.rc,
            ran: r !== undefined,
            stdout: await read(`${num(i)}.out`),
            stderr: await read(`${num(i)}.err`),
            durationMs: r?.ms ?? 0,
          };
        }),
      );
    },
  });
  const results = o.collected ?? [];
  return {
    steps: results,
    step(name: string): StepResult {
      const r = results.find((s) => s.name === name);
      if (r === undefined) throw new Error(`no step named ${JSON.stringify(name)}; steps: ${results.map((s) => s.name).join(', ')}`);
      return r;
    },
    bootSeconds: o.bootSeconds,
    wallMs: o.wallMs,
  };
}

/** Throws an error showing the step's output unless it ran and exited 0 (for test assertions). */
export function assertStepPassed(run: StepsRun, name: string): StepResult {
  const r = run.step(name);
  if (r.ran && r.exitCode === 0) return r;
  const why = r.ran ? `exited ${r.exitCode}` : 'did not run (an earlier step failed and stopOnFailure is set)';
  throw new Error(
    `test-host step ${JSON.stringify(name)} ${why}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`,
  );
}
