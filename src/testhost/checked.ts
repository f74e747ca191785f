import type { z } from 'zod';

/** `schema.parse(value)`, with the issues as one readable sentence naming `what` was bad. */
export function checked<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new TypeError(`${what}: ${r.error.issues.map((i) => i.message).join('; ')}`);
}
