// The toolstack core: database, plug-ins, and the rules every operation shares
// (per-SR lock + one transaction per command, capability gates, record lookups).
// The operations themselves live in sr-ops.ts and vdi-ops.ts.
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { env } from '../sdk/env.js';
import { StateDb } from './db/state-db.js';
import type { DbRecord } from './db/schema.js';
import { type DriverInfo, parseDriverInfo } from './driver-info.js';
import { XenApiError } from './errors.js';
import { discoverPlugins, findPlugin, type Plugin } from './plugins.js';
import type { SmCall } from './request.js';
import { DEFAULT_CALL_TIMEOUT_MS, runPlugin, type RunResult } from './runner.js';
import { lockSr } from './sr-lock.js';
import { datetimeFromDate } from './xenapi/marshal.js';

export interface ToolstackOptions {
  /** Database file (default: $SMCTL_DB or /var/lib/smapi-ts/state.db). */
  dbPath?: string;
  /** Flat plug-in directory like /opt/xensource/sm (default: $SM_DIR, else our drivers/ tree). */
  smDir?: string;
  /** Per driver call (default 300 s). */
  timeoutMs?: number;
  /** Where per-SR lock files go (default: <db>.locks/). */
  lockDir?: string;
}

export class Toolstack {
  readonly db: StateDb;
  readonly timeoutMs: number;
  readonly lockDir: string;
  /** Non-fatal problems (e.g. a failed post-attach scan) for the CLI to print. */
  readonly warnings: string[] = [];

  private constructor(readonly opts: ToolstackOptions) {
    const path = opts.dbPath ?? env.stateDb();
    this.db = StateDb.open(path);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.lockDir = opts.lockDir ?? (path === ':memory:' ? join(tmpdir(), 'smctl-locks') : `${path}.locks`);
  }

  static open(opts: ToolstackOptions = {}): Toolstack {
    return new Toolstack(opts);
  }

  close(): void {
    this.db.close();
  }

  // ---- plug-ins --------------------------------------------------------------

  plugins(): Plugin[] {
    return discoverPlugins(this.opts.smDir);
  }

  plugin(type: string): Plugin {
    return findPlugin(type, this.opts.smDir);
  }

  /** Runs one SMAPIv1 call with this toolstack's database behind the callback endpoint. */
  call(plugin: Plugin, call: Omit<SmCall, 'hostRef'>): Promise<RunResult> {
    return runPlugin(plugin, { ...call, hostRef: this.db.localHost().ref }, { db: this.db, timeoutMs: this.timeoutMs });
  }

  // ---- SM records --------------------------------------------------------------

  /** Runs sr_get_driver_info on one plug-in (no session, as xapi). */
  private async driverInfo(plugin: Plugin): Promise<DriverInfo> {
    const r = await runPlugin(plugin, { command: 'sr_get_driver_info', hostRef: this.db.localHost().ref }, { timeoutMs: this.timeoutMs });
    const info = parseDriverInfo(plugin, r.value);
    return info;
  }

  /** Stores a plug-in's SM record, keeping the ref/uuid of an earlier one of the same type. */
  private storeSm(plugin: Plugin, info: DriverInfo): DbRecord {
    const { ignored: _ignored, ...fields } = info;
    const record = { ...fields, type: plugin.type, driver_filename: plugin.path };
    const existing = this.db.where('SM', 'type', plugin.type)[0];
    if (!existing) return this.db.create('SM', record);
    for (const [k, v] of Object.entries(record)) this.db.set('SM', existing.ref, k, v);
    return this.db.get('SM', existing.ref)!;
  }

  /**
   * sm-list: re-reads every plug-in's driver info (in parallel), stores the SM
   * records and drops those whose plug-in is gone. A plug-in that fails the call
   * is left out with a warning, as xapi rejects it.
   */
  async refreshSm(): Promise<DbRecord[]> {
    const plugins = this.plugins();
    this.db.localHost();
    const infos = await Promise.all(
      plugins.map(async (p) => {
        try {
          return { p, info: await this.driverInfo(p) };
        } catch (e) {
          this.warnings.push(`Rejecting SM plugin ${p.path}: ${(e as Error).message}`);
          return undefined;
        }
      }),
    );
    return this.db.transaction(async () => {
      const out = infos.flatMap((x) => (x ? [this.storeSm(x.p, x.info)] : []));
      const kept = new Set(out.map((r) => r.ref));
      for (const r of this.db.all('SM')) if (!kept.has(r.ref)) this.db.destroy('SM', r.ref);
      return out;
    });
  }

  /** The SM record of an SR type, registering the plug-in if it was never listed. */
  async smFor(type: string): Promise<DbRecord> {
    const known = this.db.where('SM', 'type', type)[0];
    if (known) return known;
    const plugin = this.plugin(type);
    return this.storeSm(plugin, await this.driverInfo(plugin));
  }

  /** Refuses an operation the SR's driver does not declare (xapi's capability gates). */
  async requireFeature(sr: DbRecord, feature: string): Promise<DbRecord> {
    const sm = await this.smFor(String(sr['type']));
    const features = sm['features'] as Record<string, number>;
    if (!(feature in features))
      throw new XenApiError(
        'SR_OPERATION_NOT_SUPPORTED',
        [sr.ref],
        `SR ${String(sr['uuid'])} (type ${String(sr['type'])}) does not support this operation: its driver does not declare ${feature}`,
      );
    return sm;
  }

  hasFeature(sm: DbRecord, feature: string): boolean {
    return feature in (sm['features'] as Record<string, number>);
  }

  // ---- lookups --------------------------------------------------------------------

  srByUuid(uuid: string): DbRecord {
    const sr = this.db.getByUuid('SR', uuid);
    if (!sr) throw new XenApiError('UUID_INVALID', ['SR', uuid], `no SR with uuid ${uuid}`);
    return sr;
  }

  vdiByUuid(uuid: string): DbRecord {
    const vdi = this.db.getByUuid('VDI', uuid);
    if (!vdi) throw new XenApiError('UUID_INVALID', ['VDI', uuid], `no VDI with uuid ${uuid}`);
    return vdi;
  }

  pbdByUuid(uuid: string): DbRecord {
    const pbd = this.db.getByUuid('PBD', uuid);
    if (!pbd) throw new XenApiError('UUID_INVALID', ['PBD', uuid], `no PBD with uuid ${uuid}`);
    return pbd;
  }

  /** This host's PBD of the SR (smctl is a one-host pool). */
  localPbd(sr: DbRecord): DbRecord {
    const host = this.db.localHost().ref;
    const pbd = this.db.where('PBD', 'SR', sr.ref).find((p) => p['host'] === host);
    if (!pbd) throw new XenApiError('SR_HAS_NO_PBDS', [sr.ref], `SR ${String(sr['uuid'])} has no PBD on this host`);
    return pbd;
  }

  requireAttached(sr: DbRecord): DbRecord {
    const pbd = this.localPbd(sr);
    if (!pbd['currently_attached'])
      throw new XenApiError('SR_NOT_ATTACHED', [sr.ref], `SR ${String(sr['uuid'])} is not attached (run pbd-plug uuid=${String(pbd['uuid'])})`);
    return pbd;
  }

  /** The SR half of a request: device_config from the PBD, sr_ref and sr_uuid. */
  srCallPart(sr: DbRecord, pbd: DbRecord = this.localPbd(sr)): Pick<SmCall, 'deviceConfig' | 'sr'> {
    return {
      deviceConfig: { ...(pbd['device_config'] as Record<string, string>) },
      sr: { ref: sr.ref, uuid: String(sr['uuid']) },
    };
  }

  vdiCallPart(vdi: DbRecord): Pick<SmCall, 'vdi'> {
    return {
      vdi: {
        ref: vdi.ref,
        uuid: String(vdi['uuid']),
        location: String(vdi['location']),
        onBoot: String(vdi['on_boot'] || 'persist'),
        allowCaching: Boolean(vdi['allow_caching']),
      },
    };
  }

  // ---- serialisation ------------------------------------------------------------

  /**
   * Runs a state-changing operation on one SR: the toolstack's per-SR lock, then
   * one database transaction (which the driver's callbacks also write into), so
   * a failure leaves the database unchanged.
   */
  async mutate<T>(srUuid: string, fn: () => Promise<T>): Promise<T> {
    const lock = await lockSr(this.lockDir, srUuid);
    try {
      return await this.db.transaction(fn);
    } finally {
      lock.release();
    }
  }

  /** Records a XenAPI message (as xapi does for e.g. POST_ATTACH_SCAN_FAILED). */
  message(name: string, priority: number, cls: string, objUuid: string, body: string): void {
    this.db.create('message', { name, priority, cls, obj_uuid: objUuid, timestamp: datetimeFromDate(new Date()), body });
  }
}
