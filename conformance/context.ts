// What a scenario works with: the toolstack, the driver's declarations, the
// shared SR, a Resources tracker, the call log, and checks that fail with evidence.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageFormat } from '../src/driver-info.js';
import {
  type DbRecord,
  DriverFaultError,
  type Plugin,
  type Toolstack,
  XenApiError,
  srScan,
  vdiAttach,
  vdiClone,
  vdiCreate,
  vdiDestroy,
  vdiDetach,
  vdiSnapshot,
} from '../src/toolstack/index.js';
import type { SuiteConfig } from './config.js';
import type { CallRecorder } from './recorder.js';
import { Resources } from './resources.js';
import { type CallRecord, ScenarioFailure, ScenarioSkip } from './types.js';

/** The driver's sr_get_driver_info answer, as sent (before any toolstack clean-up). */
export interface DeclaredInfo {
  raw: Record<string, unknown>;
  capabilities: Set<string>;
  formats: string[];
}

export interface SuiteEnv {
  ts: Toolstack;
  plugin: Plugin;
  config: SuiteConfig;
  recorder: CallRecorder;
  declared?: DeclaredInfo;
  /** The sr_get_driver_info exchange. */
  driverInfoCall?: CallRecord;
  /** The SR the VDI scenarios share (created after the lifecycle scenario). */
  srUuid?: string;
  /** Format used by scenarios that are not run per format (first one tested), if the driver declares any. */
  defaultFormat?: ImageFormat;
  /** Directory to watch for stray files (device-config location), if any. */
  watchDir?: string;
}

export function describeError(e: unknown): string {
  if (e instanceof DriverFaultError) return `fault ${e.faultCode} (${e.faultName}): ${e.faultString}`;
  if (e instanceof XenApiError) return `${e.code}: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

export function bigOf(v: unknown): bigint {
  return BigInt(String(v ?? 0));
}

export class ScenarioContext {
  readonly res = new Resources();
  private readonly startMark: number;

  constructor(
    readonly env: SuiteEnv,
    readonly format: ImageFormat | undefined,
  ) {
    this.startMark = env.recorder.mark();
  }

  get ts(): Toolstack {
    return this.env.ts;
  }

  get srUuid(): string {
    if (!this.env.srUuid) throw new ScenarioSkip('no shared SR (its creation failed, see sr setup)');
    return this.env.srUuid;
  }

  has(cap: string): boolean {
    return this.env.declared?.capabilities.has(cap) ?? false;
  }

  require(...caps: string[]): void {
    const missing = caps.filter((c) => !this.has(c));
    if (missing.length > 0) throw new ScenarioSkip(`driver does not declare ${missing.join(', ')}`);
  }

  /** Calls made by this scenario so far. */
  calls(last?: number) {
    const all = this.env.recorder.since(this.startMark);
    return last === undefined ? all : all.slice(-last);
  }

  fail(message: string, expected: string, actual: string, calls = this.calls(2)): never {
    throw new ScenarioFailure(message, expected, actual, calls);
  }

  check(cond: boolean, message: string, expected: string, actual: string): void {
    if (!cond) this.fail(message, expected, actual);
  }

  /** Runs `fn`; if it throws, the scenario fails with that error and the call that caused it. */
  async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ScenarioFailure || e instanceof ScenarioSkip) throw e;
      const last = this.calls(1)[0];
      // Name the driver call that failed when the step made several (e.g. vdi_snapshot then vdi_update).
      const at = last && !last.ok && !what.startsWith(last.command) ? ` (at ${last.command})` : '';
      this.fail(`${what} failed${at}: ${describeError(e)}`, `${what} succeeds`, describeError(e), this.calls(1));
    }
  }

  /** Runs `fn`, which must fail; returns the error. A success fails the scenario. */
  async refused(what: string, fn: () => Promise<unknown>): Promise<unknown> {
    let value: unknown;
    try {
      value = await fn();
    } catch (e) {
      return e;
    }
    this.fail(`${what} was accepted`, `${what} is refused with an error`, `it succeeded: ${JSON.stringify(value, replacer)}`, this.calls(1));
  }

  smConfigFor(format: ImageFormat | undefined): Record<string, string> {
    return format === undefined ? {} : { 'image-format': format };
  }

  /** Creates a VDI on the shared SR and registers its removal. */
  async createVdi(size: bigint, label: string, smConfig = this.smConfigFor(this.format ?? this.env.defaultFormat)): Promise<DbRecord> {
    const vdi = await this.step(`vdi_create of ${size} bytes (${JSON.stringify(smConfig)})`, () =>
      vdiCreate(this.ts, { srUuid: this.srUuid, nameLabel: `conformance ${label}`, virtualSize: size, smConfig }),
    );
    this.track(vdi);
    return vdi;
  }

  async snapshot(src: DbRecord): Promise<DbRecord> {
    const s = await this.step('vdi_snapshot', () => vdiSnapshot(this.ts, String(src['uuid'])));
    this.track(s);
    return s;
  }

  async clone(src: DbRecord): Promise<DbRecord> {
    const c = await this.step('vdi_clone', () => vdiClone(this.ts, String(src['uuid'])));
    this.track(c);
    return c;
  }

  /** Registers the removal of a VDI: detached if attached, destroyed if still there. */
  track(vdi: DbRecord): void {
    const uuid = String(vdi['uuid']);
    this.res.add(`VDI ${uuid}`, async () => {
      const now = this.ts.db.getByUuid('VDI', uuid);
      if (!now) return;
      if (this.ts.db.attachment(now.ref)) await vdiDetach(this.ts, uuid);
      await vdiDestroy(this.ts, uuid);
    });
  }

  /**
   * Deletes a VDI whose data is already gone while the toolstack still holds its
   * record (an interrupted delete, xapi's view): the record is put back as it
   * was and vdi_delete must succeed (sm: FileVDI.delete of a missing path returns).
   */
  async deleteMissing(old: DbRecord, what: string): Promise<void> {
    const { ref, ...fields } = old;
    if (!this.ts.db.get('VDI', ref)) this.ts.db.create('VDI', fields, ref);
    await this.step(what, () => vdiDestroy(this.ts, String(old['uuid'])));
  }

  /** Attaches (and activates), returning the image path in params; registers the detach. */
  async attach(vdi: DbRecord, mode: 'RW' | 'RO' = 'RW') {
    const uuid = String(vdi['uuid']);
    const r = await this.step(`vdi_attach ${mode} of ${uuid}`, () => vdiAttach(this.ts, uuid, mode));
    return r;
  }

  async detach(vdi: DbRecord): Promise<void> {
    const uuid = String(vdi['uuid']);
    await this.step(`vdi_detach of ${uuid}`, () => vdiDetach(this.ts, uuid));
  }

  reload(vdi: DbRecord): DbRecord | undefined {
    return this.ts.db.get('VDI', vdi.ref);
  }

  async scan(): Promise<void> {
    await this.step('sr_scan', () => srScan(this.ts, this.srUuid));
  }

  srRecord(): DbRecord {
    return this.ts.srByUuid(this.srUuid);
  }

  /** The SR's managed VDIs (hidden base copies are the driver's business until GC). */
  managedVdis(): DbRecord[] {
    return this.ts.db.where('VDI', 'SR', this.srRecord().ref).filter((v) => v['managed'] !== false);
  }

  /** Every file under the watched directory, relative paths. */
  files(): string[] {
    return this.env.watchDir ? listTree(this.env.watchDir) : [];
  }
}

export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

export function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
