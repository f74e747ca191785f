// Checks on values that end up in a tool's argv. Builders are called from code,
// not users, but a wrong value here means the wrong disk gets written, so each
// check names the bad value and what was allowed.

/** A path or device operand: non-empty, no NUL, and not starting with '-' (it would parse as an option). */
export function pathArg(what: string, value: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${what}: expected a non-empty path, got ${JSON.stringify(value)}`);
  if (value.includes('\0')) throw new TypeError(`${what}: path must not contain NUL: ${JSON.stringify(value)}`);
  if (value.startsWith('-')) throw new TypeError(`${what}: path must not start with '-': ${JSON.stringify(value)}`);
  return value;
}

/** A name (VG, LV, tag, label): as pathArg, and no '/' unless allowed. */
export function nameArg(what: string, value: string, pattern = /^[A-Za-z0-9+_.][A-Za-z0-9+_.\-]*$/): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TypeError(`${what}: ${JSON.stringify(value)} is not allowed (must match ${pattern})`);
  }
  return value;
}

/** A non-negative integer (sizes, counts), rendered in decimal. */
export function intArg(what: string, value: number, opts: { min?: number; multipleOf?: number } = {}): string {
  const min = opts.min ?? 0;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${what}: expected an integer >= ${min}, got ${String(value)}`);
  }
  if (opts.multipleOf !== undefined && value % opts.multipleOf !== 0) {
    throw new RangeError(`${what}: ${value} is not a multiple of ${opts.multipleOf}`);
  }
  return String(value);
}

/** One of a closed set of strings. */
export function oneOf<T extends string>(what: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    throw new TypeError(`${what}: ${JSON.stringify(value)} is not one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  return value;
}
