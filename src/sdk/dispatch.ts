// Everything after the static answer: validate the request for its command,
// take the SR lock when the command is exclusive, run the handler, encode its
// result or the fault. Loaded only for non-static commands (it pulls in zod).
import { format } from 'node:util';
import { SRError } from './errors/sr-error.js';
import { faultFor } from './errors/map.js';
import { createLogger, redactParams, type Logger } from './log.js';
import { acquireSrLock, type HeldLock } from './lock.js';
import { parseRequest, type AnyRequest } from './protocol/requests.js';
import { resultValue } from './protocol/responses.js';
import { encodeFault, encodeResponse, type MethodCall } from './protocol/xmlrpc.js';
import type { HandlerCommand } from './protocol/commands.js';
import { XenAPISession } from './xenapi/session.js';
import type { Driver, Handler, HandlerContext } from './driver.js';

/** Nothing but the answer may reach stdout: stray console output goes to the log. */
function guardStdout(log: Logger): void {
  const toLog =
    (level: 'info' | 'warn' | 'error' | 'debug') =>
    (...args: unknown[]) =>
      log[level](format(...args));
  console.log = toLog('info');
  console.info = toLog('info');
  console.debug = toLog('debug');
  console.warn = toLog('warn');
  console.error = toLog('error');
  process.stdout.write = ((chunk: unknown) => {
    log.warn(`stdout write diverted to the log: ${String(chunk)}`);
    return true;
  }) as typeof process.stdout.write;
}

function context(driver: Driver, req: AnyRequest, log: Logger, lock: HeldLock | undefined): HandlerContext {
  let session: XenAPISession | undefined;
  return {
    log,
    info: driver.info,
    lock,
    get xapi(): XenAPISession {
      if (!req.session_ref) throw new SRError('APISession', `${req.command} request carries no session_ref`);
      session ??= new XenAPISession(req.session_ref, 'subtask_of' in req && req.subtask_of ? { subtaskOf: req.subtask_of } : {});
      return session;
    },
  };
}

/** What sm's base classes answer when a driver has no handler. */
function builtin(req: AnyRequest): (() => null) | undefined {
  if (req.command === 'vdi_epoch_end') return () => null;
  // Only a reset-on-boot VDI needs work at epoch begin (sm's SRCommand).
  if (req.command === 'vdi_epoch_begin' && req.vdi_on_boot !== 'reset') return () => null;
  return undefined;
}

/** Runs one non-static call and returns the methodResponse document. */
export async function dispatch(driver: Driver, call: MethodCall): Promise<string> {
  const base = createLogger();
  guardStdout(base);
  const command = call.methodName;
  const log = base.child(command);
  let lock: HeldLock | undefined;
  try {
    const req = parseRequest(command, call.params);
    log.info(JSON.stringify(redactParams(req.raw)));
    const handlers = await driver.loadHandlers();
    const handler = handlers[req.command] as Handler<HandlerCommand> | undefined;
    const run = handler ?? builtin(req);
    if (!run) throw new SRError('Unimplemented', `${driver.info.name} does not implement ${command}`);
    if (driver.exclusive.has(req.command) && 'sr_uuid' in req && req.sr_uuid) {
      lock = acquireSrLock(req.sr_uuid, driver.lockTimeoutMs);
    }
    const result = await (run as Handler<HandlerCommand>)(req as never, context(driver, req, log, lock));
    const value = resultValue(req.command, result);
    log.info(`done`);
    return encodeResponse(value);
  } catch (e) {
    const fault = faultFor(command, e);
    log.error(`failed: fault ${fault.faultCode} ${fault.faultString}`);
    if (!(e instanceof SRError) && e instanceof Error && e.stack) log.error(e.stack);
    return encodeFault(fault);
  } finally {
    try {
      lock?.release();
    } catch (e) {
      log.error(`releasing ${lock?.path}: ${(e as Error).message}`);
    }
  }
}
