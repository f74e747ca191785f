// xe's argument syntax: `name=value`, `map-name:key=value`, `--flag`. Global
// options (--db, --sm-dir, --timeout) may appear anywhere.
import { UsageError } from '../../toolstack/errors.js';

export interface ParsedArgs {
  command?: string;
  /** Plain `name=value` parameters. */
  params: Map<string, string>;
  /** `prefix:key=value` parameters, by prefix. */
  maps: Map<string, Record<string, string>>;
  flags: Set<string>;
  db?: string;
  smDir?: string;
  timeoutSeconds?: number;
}

const VALUE_OPTIONS = new Set(['--db', '--sm-dir', '--timeout']);

export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { params: new Map(), maps: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok.startsWith('--') || tok === '-h') {
      const eq = tok.indexOf('=');
      const name = eq > 0 ? tok.slice(0, eq) : tok;
      if (VALUE_OPTIONS.has(name)) {
        const value = eq > 0 ? tok.slice(eq + 1) : argv[++i];
        if (value === undefined || value === '') throw new UsageError(`option ${name} needs a value`);
        if (name === '--db') out.db = value;
        else if (name === '--sm-dir') out.smDir = value;
        else {
          const n = Number(value);
          if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got '${value}'`);
          out.timeoutSeconds = n;
        }
      } else {
        out.flags.add(tok === '-h' ? '--help' : tok);
      }
      continue;
    }
    if (out.command === undefined && !tok.includes('=')) {
      out.command = tok;
      continue;
    }
    const eq = tok.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad parameter syntax '${tok}': expected name=value`);
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    const colon = key.indexOf(':');
    if (colon >= 0) {
      const prefix = key.slice(0, colon);
      const sub = key.slice(colon + 1);
      if (prefix === '' || sub === '')
        throw new UsageError(`bad parameter syntax '${tok}': expected ${prefix || 'map'}:key=value with a non-empty key`);
      const m = out.maps.get(prefix) ?? {};
      if (sub in m) throw new UsageError(`parameter '${key}' given twice`);
      m[sub] = value;
      out.maps.set(prefix, m);
    } else {
      if (out.params.has(key)) throw new UsageError(`parameter '${key}' given twice`);
      out.params.set(key, value);
    }
  }
  return out;
}
