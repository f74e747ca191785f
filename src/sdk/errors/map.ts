// Turning whatever a handler threw into the fault sm would have printed.
import { SRError } from './sr-error.js';

/**
 * The error key sm's SRCommand uses when a command fails inside the driver
 * (a tool that exited non-zero, a XenAPI failure): EXCEPTION_TYPE in
 * SRCommand.py. Commands not listed fall back to SMGeneral (202).
 */
export const COMMAND_ERROR_KEY: Readonly<Record<string, string>> = {
  sr_scan: 'SRScan',
  vdi_init: 'VDILoad',
  vdi_create: 'VDICreate',
  vdi_delete: 'VDIDelete',
  vdi_attach: 'VDIUnavailable',
  vdi_detach: 'VDIUnavailable',
  vdi_activate: 'VDIUnavailable',
  vdi_deactivate: 'VDIUnavailable',
  vdi_resize: 'VDIResize',
  vdi_resize_online: 'VDIResize',
  vdi_snapshot: 'VDISnapshot',
  vdi_clone: 'VDIClone',
};

export function errorKeyForCommand(command: string): string {
  return COMMAND_ERROR_KEY[command] ?? 'SMGeneral';
}

/** The shape of a failed external command (src/sdk/tools' ToolError), checked structurally. */
export interface ToolFailureLike {
  command: readonly string[];
  exitCode: number;
  stderr: string;
}

export function isToolFailure(e: unknown): e is ToolFailureLike & { argv?: readonly string[] } {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  const argv = Array.isArray(o['command']) ? o['command'] : Array.isArray(o['argv']) ? o['argv'] : undefined;
  return (
    argv !== undefined &&
    argv.every((a) => typeof a === 'string') &&
    typeof o['exitCode'] === 'number' &&
    typeof o['stderr'] === 'string'
  );
}

function toolArgv(e: ToolFailureLike & { argv?: readonly string[] }): readonly string[] {
  return Array.isArray(e.command) ? e.command : (e.argv ?? []);
}

const MAX_STDERR = 2000;

/** "Command <argv> failed (exit N): <stderr>", sm's CommandException wording adapted to an exit code. */
export function describeToolFailure(e: ToolFailureLike & { argv?: readonly string[] }): string {
  const argv = toolArgv(e)
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)))
    .join(' ');
  let stderr = e.stderr.trim();
  if (stderr.length > MAX_STDERR) stderr = `${stderr.slice(0, MAX_STDERR)}...`;
  return `Command ${argv} failed (exit ${e.exitCode})${stderr ? `: ${stderr}` : ''}`;
}

/** Errors from the XenAPI client say which kind they are through this tag. */
export interface XenAPIErrorLike {
  xenapi: 'failure' | 'protocol';
  message: string;
}

function isXenAPIError(e: unknown): e is XenAPIErrorLike {
  return typeof e === 'object' && e !== null && ((e as { xenapi?: unknown }).xenapi === 'failure' || (e as { xenapi?: unknown }).xenapi === 'protocol');
}

export interface FaultValue {
  faultCode: number;
  faultString: string;
}

/**
 * The fault for anything thrown while running `command`:
 * SRError as is; a tool failure as the command's error key (SRCommand's
 * EXCEPTION_TYPE) with the argv, exit code and stderr as opterr; a XenAPI
 * failure as APIFailure (153), a transport problem as APIProtocolError (154);
 * anything else as code 1200 with its message (Python's Fault(1200, str(e))).
 * Never a stack trace.
 */
export function faultFor(command: string, e: unknown): FaultValue {
  if (e instanceof SRError) return e.toFault();
  if (typeof e === 'object' && e !== null && typeof (e as { toFault?: unknown }).toFault === 'function') {
    const f = (e as { toFault: () => unknown }).toFault() as Partial<FaultValue>;
    if (typeof f.faultCode === 'number' && typeof f.faultString === 'string') return { faultCode: f.faultCode, faultString: f.faultString };
  }
  if (isToolFailure(e)) return new SRError(errorKeyForCommand(command), describeToolFailure(e)).toFault();
  if (isXenAPIError(e)) return new SRError(e.xenapi === 'failure' ? 'APIFailure' : 'APIProtocolError', e.message).toFault();
  const message = e instanceof Error ? e.message : String(e);
  return { faultCode: 1200, faultString: message };
}
