// vhd-util: a blktap-compatible command-line tool for VHD images (hosts without
// blktap). Each subcommand is imported only when called, to keep start-up fast.
import { out, err } from './common.js';

type Runner = (args: string[]) => number | Promise<number>;

const COMMANDS: Record<string, () => Promise<{ run: Runner }>> = {
  create: () => import('./commands/create.js'),
  snapshot: () => import('./commands/snapshot.js'),
  query: () => import('./commands/query.js'),
  read: () => import('./commands/read.js'),
  set: () => import('./commands/set.js'),
  repair: () => import('./commands/repair.js'),
  resize: () => import('./commands/resize.js'),
  coalesce: () => import('./commands/coalesce.js'),
  modify: () => import('./commands/modify.js'),
  scan: () => import('./commands/scan.js'),
  check: () => import('./commands/check.js'),
  revert: () => import('./commands/revert.js'),
  // smapi-ts extensions (not in blktap)
  write: () => import('./commands/write.js'),
  export: () => import('./commands/export.js'),
};

const USAGE =
  'usage: vhd-util COMMAND [OPTIONS]\n' +
  'COMMAND := { create | snapshot | query | read | set | repair | resize | fill | coalesce | modify | scan | check | revert | key | copy }\n';

const EXTENSIONS =
  '\nsmapi-ts vhd-util: fill, key and copy are not implemented.\n' +
  'Extensions of this implementation (not in blktap):\n' +
  '  write  -n NAME -o OFFSET_BYTES [-f FILE|-]   write data into a VHD\n' +
  '  export -n NAME [-o OUTFILE|-]                 write the chain-resolved content as raw\n';

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === '--help') {
    out(USAGE + EXTENSIONS);
    return 0;
  }
  const load = cmd === undefined ? undefined : COMMANDS[cmd];
  if (!load) {
    // blktap: usage on stdout, exit 0; an unknown command also says so on stderr
    if (cmd !== undefined) err(`invalid COMMAND ${cmd}\n`);
    out(USAGE);
    return 0;
  }
  // --debug only turns on syslog logging in blktap; it never changes stdout.
  const args = argv.slice(1).filter((a) => a !== '--debug');
  const mod = await load();
  return mod.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    err(`vhd-util: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 5;
  },
);
