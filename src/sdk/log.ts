// Driver logging: one line per message appended to the log file
// (env.logFile(), /var/log/SMlog by default), never stdout. A logging failure
// (read-only disk, bad path) must not break the call, so every write is guarded.
import { appendFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { env } from './env.js';
import { ensureDir } from './fs-util.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** A logger whose lines carry an extra prefix, e.g. the command name. */
  child(prefix: string): Logger;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

let dirReady: string | undefined;

/** Appends lines to `file` (read from the environment at each call unless given). */
export function appendLog(text: string, file: string = env.logFile()): void {
  try {
    if (dirReady !== file) {
      ensureDir(dirname(file));
      dirReady = file;
    }
    appendFileSync(file, text);
  } catch {
    // Logging is best effort: the call's answer matters more than its log line.
  }
}

export function createLogger(tag = 'SM', prefix = ''): Logger {
  const write = (level: string, message: string) => {
    const head = `${stamp(new Date())} ${tag}: [${process.pid}] ${level === 'info' ? '' : `${level.toUpperCase()}: `}${prefix}`;
    // One log line per message line, so a multi-line message stays greppable.
    appendLog(
      String(message)
        .split('\n')
        .map((l) => `${head}${l}\n`)
        .join(''),
    );
  };
  return {
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    debug: (m) => write('debug', m),
    child: (p) => createLogger(tag, `${prefix}${p} `),
  };
}

/** Device-config keys whose values never reach the log (sm's hidePasswdInParams). */
export function redactParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...params };
  if ('session_ref' in out) out['session_ref'] = '******';
  const dc = out['device_config'];
  if (typeof dc === 'object' && dc !== null && !Array.isArray(dc)) {
    const copy: Record<string, unknown> = { ...(dc as Record<string, unknown>) };
    for (const k of Object.keys(copy)) if (/password|secret|chappassword/i.test(k)) copy[k] = '******';
    out['device_config'] = copy;
  }
  return out;
}
