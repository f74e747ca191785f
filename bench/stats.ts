// Small measuring helpers shared by the benchmarks.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Wall time of one awaited call, in milliseconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/**
 * The environment of a benchmark's smctl and drivers: every state directory
 * under `dir` (so runs never touch a real toolstack's), SM_DIR unset so smctl
 * uses this checkout's drivers.
 */
export function benchEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    SMCTL_DB: `${dir}/state.db`,
    SM_LOG_FILE: `${dir}/SMlog`,
    SM_LOCK_DIR: `${dir}/lock`,
    SM_RUN_DIR: `${dir}/run`,
    SM_SR_MOUNT_ROOT: `${dir}/mnt`,
    ...extra,
  };
  delete env['SM_DIR'];
  return env;
}
