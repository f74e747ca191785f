// Runs the scenarios against one driver executable in an isolated toolstack
// (temporary state DB): driver info first, then the SR lifecycle on its own SR,
// then the VDI scenarios on a shared SR, each with a leak check and LIFO clean-up.
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { IMAGE_FORMATS, type ImageFormat } from '../src/driver-info.js';
import { runPlugin, type DbRecord, pbdUnplug, srCreate, srDestroy, srScan, Toolstack, type Plugin, vdiDestroy, vdiDetach } from '../src/toolstack/index.js';
import type { SuiteConfig } from './config.js';
import { describeError, replacer, ScenarioContext, type DeclaredInfo, type SuiteEnv } from './context.js';
import { CallRecorder } from './recorder.js';
import type { Scenario } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';
import { type CallRecord, callStats, ScenarioFailure, type ScenarioResult, ScenarioSkip, type SuiteReport, summarize } from './types.js';

export interface RunOptions {
  driver: string;
  config: SuiteConfig;
  /** Per driver call. */
  timeoutMs?: number;
  /** Only scenarios whose id contains one of these. */
  only?: string[];
  onResult?: (r: ScenarioResult) => void;
  scenarios?: readonly Scenario[];
}

/** The plug-in for a driver path: xapi's naming rule, type = lower-cased name without `SR`. */
export function pluginFor(driver: string): Plugin {
  const path = realpathSync(driver);
  const file = basename(driver);
  if (!/^.+SR$/.test(file)) throw new Error(`driver file name ${JSON.stringify(file)} must end in SR (e.g. FileSR), as xapi requires; its SR type is the name without SR, lower-cased`);
  return { type: file.slice(0, -2).toLowerCase(), name: file.slice(0, -2), path };
}

async function fetchDriverInfo(plugin: Plugin, ts: Toolstack, timeoutMs: number): Promise<{ declared?: DeclaredInfo; call: CallRecord }> {
  const started = Date.now();
  try {
    const r = await runPlugin(plugin, { command: 'sr_get_driver_info', hostRef: ts.db.localHost().ref }, { timeoutMs });
    const call: CallRecord = { command: 'sr_get_driver_info', requestXml: r.requestXml, ok: true, response: r.value, stderr: r.stderr, durationMs: Date.now() - started };
    if (r.value === null || typeof r.value !== 'object' || Array.isArray(r.value)) return { call };
    const raw = r.value as Record<string, unknown>;
    const caps = Array.isArray(raw['capabilities']) ? raw['capabilities'].map((c) => String(c).split('/')[0]!) : [];
    const formats = Array.isArray(raw['supported_image_formats']) ? [...new Set(raw['supported_image_formats'].map(String))] : [];
    return { declared: { raw, capabilities: new Set(caps), formats }, call };
  } catch (e) {
    return { call: { command: 'sr_get_driver_info', requestXml: '', ok: false, error: describeError(e), durationMs: Date.now() - started } };
  }
}

/** Formats the per-format scenarios run with: declared ∩ configured (known ones only). */
function formatsToRun(env: SuiteEnv): { run: (ImageFormat | undefined)[]; skipped: { format: string; reason: string }[] } {
  const declared = (env.declared?.formats ?? []).filter((f): f is ImageFormat => (IMAGE_FORMATS as readonly string[]).includes(f));
  const wanted = env.config.formats;
  const skipped: { format: string; reason: string }[] = [];
  if (wanted) {
    for (const f of wanted) if (!declared.includes(f)) skipped.push({ format: f, reason: `driver does not declare image format ${f}` });
    const run = declared.filter((f) => wanted.includes(f));
    return { run, skipped };
  }
  return { run: declared.length > 0 ? declared : [undefined], skipped };
}

function failureResult(base: Omit<ScenarioResult, 'status' | 'durationMs'>, e: unknown, durationMs: number, calls: CallRecord[]): ScenarioResult {
  if (e instanceof ScenarioFailure)
    return { ...base, status: 'fail', durationMs, reason: e.message, evidence: { expected: e.expected, actual: e.actual, calls: e.calls } };
  return { ...base, status: 'fail', durationMs, reason: `unexpected error: ${describeError(e)}`, evidence: { expected: 'no error', actual: describeError(e), calls } };
}

async function runOne(env: SuiteEnv, s: Scenario, format: ImageFormat | undefined): Promise<ScenarioResult> {
  const id = format === undefined ? s.id : `${s.id}[${format}]`;
  const base = { id, title: s.title, ...(format !== undefined ? { format } : {}) };
  const started = Date.now();
  const missing = (s.requires ?? []).filter((c) => !env.declared?.capabilities.has(c));
  if (env.declared && missing.length > 0) return { ...base, status: 'skip', durationMs: 0, reason: `driver does not declare ${missing.join(', ')}` };
  if (s.id !== 'driver-info' && !env.declared) return { ...base, status: 'skip', durationMs: 0, reason: 'sr_get_driver_info failed: capabilities unknown' };
  if (s.usesSr && !env.srUuid) return { ...base, status: 'skip', durationMs: 0, reason: 'the shared SR could not be created (see sr-setup)' };
  const ctx = new ScenarioContext(env, format);
  let before: DbRecord[] = [];
  let outcome: ScenarioResult | undefined;
  try {
    if (s.usesSr) {
      await srScan(env.ts, env.srUuid!);
      before = ctx.managedVdis();
    }
    await s.run(ctx);
  } catch (e) {
    if (e instanceof ScenarioSkip) outcome = { ...base, status: 'skip', durationMs: Date.now() - started, reason: e.message };
    else outcome = failureResult(base, e, Date.now() - started, ctx.calls(2));
  }
  // Clean-up always runs; a failed clean-up fails the scenario (csi-sanity).
  const cleanupMark = env.recorder.mark();
  const failures = await ctx.res.cleanup();
  if (failures.length > 0 && outcome?.status !== 'fail')
    outcome = {
      ...base,
      status: 'fail',
      durationMs: Date.now() - started,
      reason: `clean-up failed: ${failures.map((f) => `${f.what}: ${describeError(f.error)}`).join('; ')}`,
      evidence: { expected: 'everything the scenario created is removed', actual: failures.map((f) => `${f.what}: ${describeError(f.error)}`).join('\n'), calls: env.recorder.since(cleanupMark).filter((c) => !c.ok) },
    };
  if (s.usesSr && outcome?.status !== 'fail') {
    try {
      await srScan(env.ts, env.srUuid!);
      const after = ctx.managedVdis();
      if (after.length !== before.length) {
        const was = new Set(before.map((v) => String(v['uuid'])));
        const extra = after.filter((v) => !was.has(String(v['uuid']))).map((v) => `${String(v['uuid'])} (location ${String(v['location'])})`);
        outcome = {
          ...base,
          status: 'fail',
          durationMs: Date.now() - started,
          reason: `leak: ${before.length} VDIs before the scenario, ${after.length} after its clean-up and an sr_scan`,
          evidence: { expected: `${before.length} VDIs after sr_scan`, actual: `${after.length} VDIs; new: ${extra.join(', ') || '(none)'}`, calls: env.recorder.last(1) },
        };
      }
    } catch (e) {
      outcome = failureResult(base, e, Date.now() - started, env.recorder.last(1));
    }
  }
  return outcome ?? { ...base, status: 'pass', durationMs: Date.now() - started };
}

/** sm's GC removes hidden base copies eventually; before deleting the SR the suite removes what is left. */
async function sweepUnmanaged(env: SuiteEnv, sr: DbRecord): Promise<void> {
  for (const v of env.ts.db.where('VDI', 'SR', sr.ref).filter((x) => x['managed'] === false).reverse()) {
    await env.ts
      .mutate(String(sr['uuid']), () => env.ts.call(env.plugin, { command: 'vdi_delete', ...env.ts.srCallPart(sr), ...env.ts.vdiCallPart(v) }))
      .catch(() => undefined);
  }
}

async function createSharedSr(env: SuiteEnv): Promise<ScenarioResult | undefined> {
  const started = Date.now();
  const mark = env.recorder.mark();
  const warningsBefore = env.ts.warnings.length;
  try {
    const sr = await srCreate(env.ts, { type: env.plugin.type, nameLabel: 'conformance shared SR', deviceConfig: env.config.deviceConfig });
    env.srUuid = String(sr['uuid']);
    if (env.ts.warnings.length > warningsBefore) throw new ScenarioFailure('the scan after sr_attach failed', 'sr_scan succeeds', env.ts.warnings.slice(warningsBefore).join('\n'), env.recorder.since(mark));
    return undefined;
  } catch (e) {
    return failureResult({ id: 'sr-setup', title: 'create the SR the VDI scenarios share' }, e, Date.now() - started, env.recorder.since(mark).slice(-2));
  }
}

async function destroySharedSr(env: SuiteEnv): Promise<ScenarioResult | undefined> {
  if (!env.srUuid) return undefined;
  const started = Date.now();
  const mark = env.recorder.mark();
  const base = { id: 'sr-teardown', title: 'delete the shared SR' };
  try {
    const sr = env.ts.srByUuid(env.srUuid);
    await srScan(env.ts, env.srUuid);
    // Whatever earlier (failed) scenarios left is removed too, so the next run starts clean.
    const leftovers = env.ts.db.where('VDI', 'SR', sr.ref).filter((v) => v['managed'] !== false);
    const notRemoved: string[] = [];
    for (const v of leftovers) {
      const uuid = String(v['uuid']);
      try {
        if (env.ts.db.attachment(v.ref)) await vdiDetach(env.ts, uuid);
        await vdiDestroy(env.ts, uuid);
      } catch (e) {
        notRemoved.push(`${uuid}: ${describeError(e)}`);
      }
    }
    await srScan(env.ts, env.srUuid);
    await sweepUnmanaged(env, sr);
    const pbd = env.ts.localPbd(sr);
    await pbdUnplug(env.ts, String(pbd['uuid']));
    // On failure the SR stays detached: nothing of the run is left plugged (mounts etc.).
    await srDestroy(env.ts, env.srUuid);
    env.srUuid = undefined;
    if (leftovers.length > 0)
      throw new ScenarioFailure(
        `${leftovers.length} VDI(s) were left on the shared SR by earlier scenarios (removed now)`,
        'no VDI left after every scenario cleaned up',
        leftovers.map((v) => `${String(v['uuid'])} (location ${String(v['location'])})`).join(', '),
      );
    if (notRemoved.length > 0) throw new Error(`could not remove: ${notRemoved.join('; ')}`);
    return undefined;
  } catch (e) {
    return failureResult(base, e, Date.now() - started, env.recorder.since(mark).slice(-2));
  }
}

export async function runSuite(o: RunOptions): Promise<SuiteReport> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const plugin = pluginFor(o.driver);
  if (o.config.type !== undefined && o.config.type !== plugin.type)
    throw new Error(`the SR configuration is for type ${o.config.type} but ${o.driver} is a ${plugin.type} driver (type = file name without SR, lower-cased)`);
  const work = mkdtempSync(join(tmpdir(), 'sm-conformance-'));
  const timeoutMs = o.timeoutMs ?? 300_000;
  const ts = Toolstack.open({ dbPath: join(work, 'state.db'), lockDir: join(work, 'locks'), smDir: dirname(plugin.path), timeoutMs });
  const results: ScenarioResult[] = [];
  const emit = (r: ScenarioResult) => {
    results.push(r);
    o.onResult?.(r);
  };
  try {
    // The driver's path is used as given (not by scanning its directory for another plug-in of the type).
    ts.plugin = () => plugin;
    ts.plugins = () => [plugin];
    const recorder = CallRecorder.attach(ts);
    const env: SuiteEnv = { ts, plugin, config: o.config, recorder };
    const location = o.config.deviceConfig['location'];
    if (location !== undefined && location.startsWith('/')) env.watchDir = location;
    const info = await fetchDriverInfo(plugin, ts, timeoutMs);
    env.driverInfoCall = info.call;
    if (info.declared) env.declared = info.declared;
    const formats = formatsToRun(env);
    if (formats.run[0] !== undefined) env.defaultFormat = formats.run[0];
    const selected = (o.scenarios ?? SCENARIOS).filter((s) => !o.only || o.only.some((x) => s.id.includes(x)));
    let srTried = false;
    for (const s of selected) {
      if (s.usesSr && !srTried) {
        srTried = true;
        const setup = await createSharedSr(env);
        if (setup) emit(setup);
      }
      if (!s.perFormat) {
        emit(await runOne(env, s, undefined));
        continue;
      }
      for (const f of formats.run) emit(await runOne(env, s, f));
      for (const sk of formats.skipped) emit({ id: `${s.id}[${sk.format}]`, title: s.title, format: sk.format, status: 'skip', durationMs: 0, reason: sk.reason });
    }
    const teardown = await destroySharedSr(env);
    if (teardown) emit(teardown);
    return {
      driver: plugin.path,
      type: plugin.type,
      ...(env.declared ? { driverInfo: JSON.parse(JSON.stringify(env.declared.raw, replacer)) as unknown } : {}),
      startedAt,
      durationMs: Date.now() - started,
      results,
      summary: summarize(results),
      calls: callStats([...(env.driverInfoCall ? [env.driverInfoCall] : []), ...recorder.calls]),
    };
  } finally {
    ts.close();
    rmSync(work, { recursive: true, force: true });
  }
}
