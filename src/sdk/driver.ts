// The driver-author API: a driver is one declarative object —
//   export default defineDriver({ info, exclusive: [...], handlers: {...} })
// and its launcher calls runDriver(driver). This module stays free of heavy
// imports because every driver start (sr_get_driver_info included) loads it.
import type { DriverInfo } from '../driver-info.js';
import { COMMANDS, isCommand, type HandlerCommand } from './protocol/commands.js';
import type { RequestMap } from './protocol/requests.js';
import type { ResultMap } from './protocol/responses.js';
import type { Logger } from './log.js';
import type { HeldLock } from './lock.js';
import type { XenAPISession } from './xenapi/session.js';

export interface HandlerContext {
  /** Writes to the driver log (SM_LOG_FILE), never to stdout. */
  log: Logger;
  /** The driver's own DRIVER_INFO. */
  info: DriverInfo;
  /**
   * XenAPI session built from the request's session_ref, for the callbacks
   * xapi expects (VDI.db_introduce, SR.set_physical_size, ...). Reading it
   * when the request carries no session_ref throws SRError APISession (150).
   */
  readonly xapi: XenAPISession;
  /** The SR lock, held for the whole call when the command is declared exclusive. */
  lock: HeldLock | undefined;
}

export type Handler<C extends HandlerCommand> = (
  request: RequestMap[C],
  ctx: HandlerContext,
) => Promise<ResultMap[C]> | ResultMap[C];

export type Handlers = { [C in HandlerCommand]?: Handler<C> };

/** Handlers given inline, or loaded on demand (keeps sr_get_driver_info from importing them). */
export type HandlerSource = Handlers | (() => Promise<Handlers | { handlers: Handlers } | { default: Handlers }>);

export interface DriverDefinition {
  info: DriverInfo;
  /** Commands run with the per-SR lock held (sm's ops_exclusive). */
  exclusive?: readonly HandlerCommand[];
  handlers: HandlerSource;
  /** How long an exclusive command waits for the SR lock before LockErr (37). Default 120 s. */
  lockTimeoutMs?: number;
}

export interface Driver {
  readonly info: DriverInfo;
  readonly exclusive: ReadonlySet<HandlerCommand>;
  readonly lockTimeoutMs: number | undefined;
  loadHandlers(): Promise<Handlers>;
}

export class DriverDefinitionError extends Error {
  override name = 'DriverDefinitionError';
}

function handlerNames(h: Handlers): void {
  for (const [k, v] of Object.entries(h)) {
    if (!isCommand(k) || (k as string) === 'sr_get_driver_info')
      throw new DriverDefinitionError(`handler for unknown command '${k}'; commands: ${COMMANDS.filter((c) => c !== 'sr_get_driver_info').join(', ')}`);
    if (typeof v !== 'function') throw new DriverDefinitionError(`handler for ${k} is not a function`);
  }
}

export function defineDriver(def: DriverDefinition): Driver {
  for (const c of def.exclusive ?? [])
    if (!isCommand(c) || (c as string) === 'sr_get_driver_info') throw new DriverDefinitionError(`exclusive lists unknown command '${c}'`);
  let loaded: Promise<Handlers> | undefined;
  const source = def.handlers;
  if (typeof source !== 'function') handlerNames(source);
  return Object.freeze({
    info: def.info,
    exclusive: new Set(def.exclusive ?? []),
    lockTimeoutMs: def.lockTimeoutMs,
    loadHandlers(): Promise<Handlers> {
      loaded ??= (async () => {
        if (typeof source !== 'function') return source;
        const m = await source();
        const h = ('default' in m ? m.default : 'handlers' in m ? m.handlers : m) as Handlers;
        handlerNames(h);
        return h;
      })();
      return loaded;
    },
  });
}

/** Identity, for typing a handlers module: `export default defineHandlers({ sr_create: async (req, ctx) => ... })`. */
export function defineHandlers(h: Handlers): Handlers {
  return h;
}

/** The commands a driver implements. */
export async function implementedCommands(driver: Driver): Promise<HandlerCommand[]> {
  return Object.keys(await driver.loadHandlers()) as HandlerCommand[];
}

/**
 * Everything inconsistent between what a driver declares and what it
 * implements (empty when consistent). Run by the tests for every driver.
 */
export async function checkDriver(driver: Driver): Promise<string[]> {
  // Loaded here, not at the top: drivers import this module on every start.
  const { capabilityProblems } = await import('./capabilities.js');
  return capabilityProblems(driver.info, await implementedCommands(driver));
}

/** checkDriver, throwing a DriverDefinitionError listing every problem. */
export async function assertDriverConsistent(driver: Driver): Promise<void> {
  const problems = await checkDriver(driver);
  if (problems.length > 0) throw new DriverDefinitionError(`driver '${driver.info.name}' is inconsistent:\n  ${problems.join('\n  ')}`);
}
