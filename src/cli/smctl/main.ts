// smctl entry point: parse, check parameters, run, and report errors as xe does
// (error code + parameters), exiting non-zero.
import { DriverFaultError, UsageError, XenApiError } from '../../toolstack/errors.js';
import { Toolstack } from '../../toolstack/toolstack.js';
import { parseArgs } from './args.js';
import { checkParams, findCommand, type Ctx } from './commands.js';
import { commandHelp, generalHelp } from './help.js';

export async function main(argv: string[]): Promise<number> {
  // `smctl vdi-list | head`: a closed pipe ends the output, not the process with a trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exitCode ??= 0;
    else throw e;
  });
  let ts: Toolstack | undefined;
  try {
    const positional = argv.filter((a, i) => !a.startsWith('-') && !['--db', '--sm-dir', '--timeout'].includes(argv[i - 1] ?? ''));
    if (positional[0] === 'help' || positional.length === 0) {
      const topic = positional[0] === 'help' ? positional[1] : undefined;
      if (topic) {
        const spec = findCommand(topic);
        if (!spec) throw new UsageError(`unknown command '${topic}' (run 'smctl help' for the list)`);
        process.stdout.write(commandHelp(spec));
        return 0;
      }
      const wanted = positional[0] === 'help' || argv.includes('--help') || argv.includes('-h');
      (wanted ? process.stdout : process.stderr).write(generalHelp());
      return wanted ? 0 : 2;
    }
    const args = parseArgs(argv);
    if (args.command === undefined) throw new UsageError(`no command given (run 'smctl help' for the list)`);
    const spec = findCommand(args.command);
    if (!spec) throw new UsageError(`unknown command '${args.command}' (run 'smctl help' for the list)`);
    if (args.flags.has('--help')) {
      process.stdout.write(commandHelp(spec));
      return 0;
    }
    checkParams(spec, args);
    const ctx: Ctx = {
      args,
      spec,
      ts: () =>
        (ts ??= Toolstack.open({
          ...(args.db !== undefined ? { dbPath: args.db } : {}),
          ...(args.smDir !== undefined ? { smDir: args.smDir } : {}),
          ...(args.timeoutSeconds !== undefined ? { timeoutMs: Math.round(args.timeoutSeconds * 1000) } : {}),
        })),
      out: (text) => process.stdout.write(text),
    };
    await spec.run(ctx);
    return 0;
  } catch (e) {
    process.stderr.write(describeError(e));
    return e instanceof UsageError ? 2 : 1;
  } finally {
    ts?.close();
  }
}

export function describeError(e: unknown): string {
  if (e instanceof UsageError) return `Error: ${e.message}\nRun 'smctl help' or '<command> --help' for usage.\n`;
  if (e instanceof XenApiError) {
    const lines = [`Error: ${e.message}`, `Error code: ${e.code}`];
    if (e.params.length) lines.push(`Error parameters: ${e.params.join(', ')}`);
    if (e instanceof DriverFaultError) lines.push(`Driver fault: ${e.faultCode} (${e.faultName})`);
    return `${lines.join('\n')}\n`;
  }
  if (e instanceof RangeError || e instanceof TypeError || e instanceof Error) return `Error: ${e.message}\n`;
  return `Error: ${String(e)}\n`;
}
