// Every scenario, in the order they run.
import type { Scenario } from '../scenario.js';
import { attachCycles, introduceDuplicate } from './attach.js';
import { concurrency } from './concurrency.js';
import { driverInfo } from './driver-info.js';
import { idempotency } from './idempotency.js';
import { resize, vdiDelete } from './resize-delete.js';
import { clone, snapshot } from './snapshot-clone.js';
import { srLifecycle } from './sr-lifecycle.js';
import { vdiCreateOversize, vdiCreateSizes, vdiCreateUnsupportedFormat } from './vdi-create.js';

/** Scenarios that need no shared SR run first (the lifecycle one owns the SR location meanwhile). */
export const SCENARIOS: readonly Scenario[] = [
  driverInfo,
  srLifecycle,
  vdiCreateSizes,
  vdiCreateUnsupportedFormat,
  vdiCreateOversize,
  snapshot,
  clone,
  resize,
  vdiDelete,
  attachCycles,
  introduceDuplicate,
  idempotency,
  concurrency,
];
