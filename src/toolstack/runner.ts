// Runs one SMAPIv1 call the way xapi's sm_exec.ml does: argv[1] = the XML-RPC
// methodCall (xapi's bare-string encoding), env ORIGINATOR=SM, stdout parsed as
// a methodResponse. While the driver runs, a XenAPI endpoint serves its
// callbacks from the toolstack database (SM_XAPI_URL + a fresh session_ref).
import { spawn } from 'node:child_process';
import { encodeMethodCallXapiStyle, parseMethodResponse, type XmlRpcValue } from '../sdk/protocol/xmlrpc.js';
import type { StateDb } from './db/state-db.js';
import { DriverFaultError, DriverProtocolError } from './errors.js';
import type { Plugin } from './plugins.js';
import { buildRequest, type SmCall } from './request.js';
import { smErrorName, xapiErrorForFault } from './sm-error-names.js';
import { type EndpointCall, XenApiEndpoint } from './xenapi/endpoint.js';

export const DEFAULT_CALL_TIMEOUT_MS = 300_000;

export interface RunOptions {
  /** Kill the driver (its whole process group) after this long. */
  timeoutMs?: number;
  /** Database the callback endpoint serves; without it no endpoint is started. */
  db?: StateDb;
}

export interface RunResult {
  value: XmlRpcValue;
  stderr: string;
  /** The exact argv[1] sent. */
  requestXml: string;
  /** XenAPI calls the driver made during the run. */
  callbacks: EndpointCall[];
}

interface ProcessOutcome {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  spawnError?: Error;
}

function runProcess(path: string, argv1: string, extraEnv: Record<string, string>, timeoutMs: number): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    const child = spawn(path, [argv1], {
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group, so a timeout kills whatever the driver started too.
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
        signal,
        timedOut,
        ...(spawnError ? { spawnError } : {}),
      });
    });
  });
}

/** Runs `call` on `plugin`; resolves with the decoded result or rejects with a DriverFaultError / DriverProtocolError. */
export async function runPlugin(plugin: Plugin, call: SmCall, opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const needsSession = call.command !== 'sr_get_driver_info';
  const endpoint = needsSession && opts.db ? await XenApiEndpoint.start(opts.db) : undefined;
  try {
    const sessionRef = needsSession ? (call.sessionRef ?? endpoint?.newSession() ?? 'OpaqueRef:NULL') : undefined;
    const request = buildRequest({ ...call, ...(sessionRef !== undefined ? { sessionRef } : {}) });
    const requestXml = encodeMethodCallXapiStyle(call.command, [request]);
    const extraEnv: Record<string, string> = { ORIGINATOR: 'SM' };
    if (endpoint) extraEnv['SM_XAPI_URL'] = endpoint.url;
    const p = await runProcess(plugin.path, requestXml, extraEnv, timeoutMs);
    const fail = (reason: string) => new DriverProtocolError(reason, p.stdout, p.stderr, call.command, plugin.path);
    if (p.spawnError) throw fail(`cannot execute: ${p.spawnError.message}`);
    if (p.timedOut) throw fail(`timed out after ${timeoutMs / 1000} s (killed)`);
    if (p.signal) throw fail(`received signal: ${p.signal}`);
    if (p.code !== 0) throw fail(`non-zero exit (${p.code})`);
    let parsed;
    try {
      parsed = parseMethodResponse(p.stdout);
    } catch (e) {
      throw fail(`failed to parse the backend response: ${(e as Error).message}`);
    }
    if (parsed.kind === 'fault') {
      const { faultCode, faultString } = parsed.fault;
      const x = xapiErrorForFault(faultCode, faultString, p.stderr, {
        ...(call.sr ? { srRef: call.sr.ref } : {}),
        ...(call.vdi ? { vdiRef: call.vdi.ref } : {}),
      });
      throw new DriverFaultError(x.code, x.params, faultCode, smErrorName(faultCode), faultString, p.stderr, call.command, plugin.path);
    }
    return { value: parsed.value, stderr: p.stderr, requestXml, callbacks: endpoint ? [...endpoint.calls] : [] };
  } finally {
    await endpoint?.close();
  }
}
