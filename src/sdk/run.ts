// runDriver: the whole process contract of a driver executable (spec §1.2).
// One argv argument in, one methodResponse on stdout, exit status 0 — errors
// are faults. sr_get_driver_info is answered here, before any other module is
// loaded; everything else goes through dispatch.ts, imported on demand.
import { writeSync } from 'node:fs';
import { driverInfoResponse, type DriverInfo } from '../driver-info.js';
import { checkMethodCall } from './protocol/envelope.js';
import { encodeFault, encodeResponse, type MethodCall } from './protocol/xmlrpc.js';
import type { Driver } from './driver.js';

let answered = false;

/** Writes the whole answer to fd 1, even when it is a non-blocking pipe. */
function writeStdout(text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/**
 * Prints the one answer and ends the process with status 0. Python's print()
 * adds a newline after xmlrpc.client.dumps' own: sm's output is byte-identical.
 */
export function answer(document: string): never {
  if (!answered) {
    answered = true;
    try {
      writeStdout(`${document}\n`);
    } catch {
      // stdout is gone (caller died): nothing left to tell anyone.
    }
  }
  process.exit(0);
}

// The error modules load only when something failed: the static answer does not need them.
async function fatal(command: string, e: unknown): Promise<never> {
  try {
    const { createLogger } = await import('./log.js');
    createLogger().error(`${command}: unexpected ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    const { faultFor } = await import('./errors/map.js');
    return answer(encodeFault(faultFor(command, e)));
  } catch {
    return answer(encodeFault({ faultCode: 1200, faultString: e instanceof Error ? e.message : String(e) }));
  }
}

async function badRequest(detail: string, argCount: number): Promise<never> {
  const [{ createLogger }, { SRError }] = await Promise.all([import('./log.js'), import('./errors/sr-error.js')]);
  createLogger().error(`failed to parse the command line (${argCount} argument(s)): ${detail}`);
  return answer(encodeFault(new SRError('BadRequest', detail).toFault()));
}

/**
 * What a launcher may pass instead of the driver itself: its DRIVER_INFO and a
 * loader. sr_get_driver_info then never loads the driver module (nor what
 * its handlers import); every other command loads it once.
 */
export interface DriverEntry {
  info: DriverInfo;
  load(): Promise<Driver>;
}

/**
 * Runs one call of a driver as a toolstack plug-in: `runDriver(driver, process.argv)`
 * or, from a launcher, `runDriver({ info, load: () => import(...).then((m) => m.driver) })`.
 * Never returns: the process exits 0 after printing the methodResponse.
 */
export async function runDriver(target: Driver | DriverEntry, argv: readonly string[] = process.argv): Promise<never> {
  let command = 'unknown';
  process.on('uncaughtException', (e) => void fatal(command, e));
  process.on('unhandledRejection', (e) => void fatal(command, e));
  const call: MethodCall | string = checkMethodCall(argv.slice(2));
  if (typeof call === 'string') return badRequest(call, argv.length - 2);
  command = call.methodName;
  if (command === 'sr_get_driver_info') return answer(encodeResponse(driverInfoResponse(target.info)));
  try {
    const [{ dispatch }, driver] = await Promise.all([import('./dispatch.js'), 'load' in target ? target.load() : target]);
    return answer(await dispatch(driver, call));
  } catch (e) {
    // A driver module that fails to load is still one fault on stdout and exit 0.
    return fatal(command, e);
  }
}
