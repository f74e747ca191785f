// `smctl help` and `smctl help <command>` / `<command> --help`.
import { COMMANDS, type CommandSpec } from './commands.js';

export const GLOBAL_OPTIONS = `Global options (anywhere on the line):
  --db PATH         state database (default: $SMCTL_DB or /var/lib/smapi-ts/state.db)
  --sm-dir DIR      flat plug-in directory like /opt/xensource/sm (default: $SM_DIR,
                    else this package's drivers/*/ tree)
  --timeout SECS    kill a driver call after this long (default 300)
`;

export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: smctl <command> [name=value ...] [map:key=value ...] [--flags]

A toolstack for SMAPIv1 storage drivers with xe's syntax: it runs the plug-ins
the way xapi does and keeps SR/PBD/VDI records in its own database.

Commands:
${lines.join('\n')}
  help [command]    this text, or one command's parameters

${GLOBAL_OPTIONS}
Sizes take bytes or a unit: KiB, MiB, GiB, TiB (K/M/G/T and KB/MB/GB/TB are the
same powers of 1024, as xe). Booleans: true/false (also yes/no, t/f, y/n, 1/0).
`;
}

export function commandHelp(c: CommandSpec): string {
  const out = [`Usage: smctl ${c.name}`, '', c.summary, ''];
  const params = Object.entries(c.params);
  if (params.length) {
    out.push('Parameters:');
    for (const [name, desc] of params) out.push(`  ${name}=${c.required.includes(name) ? ' (required)' : ''}  ${desc}`);
  }
  if (c.maps) {
    out.push('Map parameters:');
    for (const [name, desc] of Object.entries(c.maps)) out.push(`  ${name}:<key>=<value>  ${desc}`);
  }
  if (c.flags) {
    out.push('Options:');
    for (const [name, desc] of Object.entries(c.flags)) out.push(`  ${name}  ${desc}`);
  }
  if (c.filterView) out.push(`Filters: <field>=<value> for any of: ${c.filterView.fields.map((f) => f.name).join(', ')}`);
  out.push('', GLOBAL_OPTIONS);
  return out.join('\n');
}
