// Fault-injection points, as sm's FIST points: `SM_FIST=<name>` makes the
// driver process die (SIGKILL, like a crash or power cut) when it reaches
// point <name>. The real tools run; only the crash is injected. Crash tests
// use it to stop a multi-step operation after each step.
export const FIST_ENV = 'SM_FIST';

/** Every point, so tests can iterate them and a typo in a test is caught. */
export const FIST_POINTS = [
  'snapshot-journal',
  'snapshot-link',
  'snapshot-leaf',
  'snapshot-rename',
  'snapshot-clone',
  'snapshot-hide',
  'snapshot-db',
  'resize-journal',
  'resize-done',
  'coalesce-journal',
  'coalesce-merged',
  'coalesce-relinked',
  'coalesce-removed',
  'leaf-coalesce-journal',
  'leaf-coalesce-merged',
  'leaf-coalesce-renamed',
] as const;
export type FistPoint = (typeof FIST_POINTS)[number];

export function fistPoint(name: FistPoint): void {
  const wanted = process.env[FIST_ENV];
  if (wanted === undefined || wanted === '') return;
  if (wanted === name) process.kill(process.pid, 'SIGKILL');
}
