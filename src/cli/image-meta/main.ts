// bin/image-meta: get, set, unset and dump the machine data stored with a disk
// image (docs/image-meta.md). An image is named by its path, or on a file SR
// by --sr-path DIR --vdi UUID. Exit codes: 0 done; 1 refused or failed (the
// message says why; nothing was changed); 2 bad usage; 3 `get`: no such
// value or key.
import { parseArgs } from 'node:util';
import { findVdiFile, UUID_RE } from '../../sdk/file-sr/paths.js';
import type { ImageRef } from '../../sdk/formats/types.js';
import {
  changeKeys, clearOwn, detectFormat, ImageMetaError, parseCliValue, readEffective, readOwn, setOwn, MAX_VALUE_BYTES,
  parseStored, type EffectiveMeta, type JsonValue,
} from '../../sdk/image-meta/index.js';
import { readFileSync, statSync } from 'node:fs';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_NOT_FOUND = 3;

class UsageError extends Error {}

interface Io {
  out(s: string): void;
  err(s: string): void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

const TARGET_HELP = `The image is IMAGE (a qcow2, VHD or raw file; raw files must be named *.raw/*.img
or given --format raw), or a VDI on a file SR: --sr-path DIR --vdi UUID, or a
VDI on an lvm SR: --sr-path DEVICE --vdi UUID (DEVICE: a PV of the SR's VG;
the value is in the LV's tags or the SR's MGT volume, no LV is activated).
  --format qcow2|vhd|raw   the image's format (default: from its signature)`;

const HELP: Record<string, string> = {
  main: `usage: image-meta <command> [options]

Machine data stored with disk images: one JSON object per image (at most
${MAX_VALUE_BYTES} bytes), inherited by a child image that has none of its own.

commands:
  get     print the effective value, or one key of it
  set     set keys, or replace the whole value
  unset   remove keys, or drop the image's own value (inherit again)
  dump    show the value, which image each key comes from, and the whole chain

Run \`image-meta <command> --help\` for a command's options.
Exit codes: 0 done, 1 refused or failed (nothing changed), 2 bad usage, 3 not found.`,
  get: `usage: image-meta get IMAGE [KEY] [--own] [--format F]
       image-meta get --sr-path DIR --vdi UUID [KEY]

Prints the effective value (own or inherited) as JSON, or with KEY that key's
value as JSON. Exit 3 when there is no value (or no such key).
  --own   the image's own value only (no inheritance)
${TARGET_HELP}`,
  set: `usage: image-meta set IMAGE KEY=VALUE... [--format F]
       image-meta set IMAGE --json TEXT | --json-file PATH

KEY=VALUE: VALUE is read as JSON when it parses (1024, ["q35","pc"], true),
otherwise as a plain string. The image's new own value is its effective value
with the keys changed (an inheriting image gets its own copy).
--json / --json-file replace the whole own value ('{}' is a value too: it stops
inheritance). Keys: registered qemu.* keys (data/image-meta-keys.yaml) or a
reverse-dotted vendor prefix (com.example.key). Refused values change nothing.
${TARGET_HELP}`,
  unset: `usage: image-meta unset IMAGE KEY... [--format F]
       image-meta unset IMAGE --own

KEY...: the image's new own value is its effective value without those keys.
--own:  remove the image's own value; it inherits from its backing file again.
${TARGET_HELP}`,
  dump: `usage: image-meta dump IMAGE [--json] [--format F]

Shows the effective value, the image each key comes from, and every image of
the backing chain with its own value (or "inherits") and where it is stored.
  --json   machine-readable output
${TARGET_HELP}`,
};

const COMMON = {
  format: { type: 'string' },
  'sr-path': { type: 'string' },
  vdi: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** One image's machine data, wherever it is kept (a file and its chain, or a VDI of an lvm SR). */
interface Handle {
  path: string;
  readOwn(): Promise<string | null>;
  readEffective(o?: { full?: boolean }): Promise<EffectiveMeta>;
  setOwn(text: string): Promise<void>;
  clearOwn(): Promise<void>;
  changeKeys(changes: Record<string, JsonValue | undefined>): Promise<string>;
}

function fileHandle(image: ImageRef): Handle {
  return {
    path: image.path,
    readOwn: () => readOwn(image),
    readEffective: (o) => readEffective(image, o),
    setOwn: (text) => setOwn(image, text),
    clearOwn: () => clearOwn(image),
    changeKeys: (changes) => changeKeys(image, changes),
  };
}

const isBlockDevice = (p: string): boolean => {
  try {
    return statSync(p).isBlockDevice();
  } catch {
    return false;
  }
};

async function target(values: { format?: string; 'sr-path'?: string; vdi?: string }, positionals: string[]): Promise<{ image: Handle; rest: string[] }> {
  const srPath = values['sr-path'];
  const vdi = values.vdi;
  if (srPath !== undefined || vdi !== undefined) {
    if (srPath === undefined || vdi === undefined) throw new UsageError('--sr-path and --vdi go together');
    if (!UUID_RE.test(vdi)) throw new UsageError(`--vdi ${JSON.stringify(vdi)} is not a VDI uuid (8-4-4-4-12 hexadecimal digits)`);
    if (isBlockDevice(srPath)) {
      if (values.format !== undefined) throw new UsageError('--format does not apply to a VDI of an lvm SR (its LV name gives the format)');
      // Loaded only here: the LVM modules are not needed for files.
      const { openLvmImageMeta } = await import('../../sdk/lvm-sr/image-meta-target.js');
      return { image: await openLvmImageMeta(srPath, vdi.toLowerCase()), rest: positionals };
    }
    const f = findVdiFile(srPath, vdi);
    if (f === null) throw new ImageMetaError('not-an-image', `VDI ${vdi} has no image file (<uuid>.vhd, .qcow2 or .raw) in ${srPath}`);
    return { image: fileHandle({ path: f.path, format: detectFormat(f.path, values.format ?? f.format) }), rest: positionals };
  }
  const [path, ...rest] = positionals;
  if (path === undefined) throw new UsageError('name the image: IMAGE, or --sr-path DIR|DEVICE --vdi UUID');
  return { image: fileHandle({ path, format: detectFormat(path, values.format) }), rest };
}

function showJson(v: JsonValue): string {
  return JSON.stringify(v);
}

async function cmdGet(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...COMMON, own: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) return help('get', io);
  const { image, rest } = await target(values, positionals);
  if (rest.length > 1) throw new UsageError(`get takes at most one KEY, got ${rest.length}`);
  const text = values.own ? await image.readOwn() : (await image.readEffective()).text;
  if (text === null) {
    io.err(`image-meta: ${image.path} has no ${values.own ? 'own value' : 'value (no image in its chain has one)'}\n`);
    return EXIT_NOT_FOUND;
  }
  if (rest.length === 0) {
    io.out(`${text}\n`);
    return EXIT_OK;
  }
  const key = rest[0]!;
  const obj = parseStored(text);
  if (obj === null) throw new ImageMetaError('corrupt', `the stored value of ${image.path} is not a JSON object`);
  if (!Object.prototype.hasOwnProperty.call(obj, key)) {
    io.err(`image-meta: key ${JSON.stringify(key)} is not set on ${image.path}\n`);
    return EXIT_NOT_FOUND;
  }
  io.out(`${showJson(obj[key]!)}\n`);
  return EXIT_OK;
}

async function cmdSet(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args, options: { ...COMMON, json: { type: 'string' }, 'json-file': { type: 'string' } }, allowPositionals: true, strict: true,
  });
  if (values.help) return help('set', io);
  const { image, rest } = await target(values, positionals);
  const whole = values.json ?? (values['json-file'] !== undefined ? readFileSync(values['json-file'], 'utf8') : undefined);
  if (values.json !== undefined && values['json-file'] !== undefined) throw new UsageError('give --json or --json-file, not both');
  if (whole !== undefined) {
    if (rest.length > 0) throw new UsageError('--json replaces the whole value; do not add KEY=VALUE arguments');
    await image.setOwn(whole);
    return EXIT_OK;
  }
  if (rest.length === 0) throw new UsageError('set needs KEY=VALUE arguments, or --json TEXT');
  const changes: Record<string, JsonValue> = {};
  for (const a of rest) {
    const eq = a.indexOf('=');
    if (eq < 0) throw new UsageError(`${JSON.stringify(a)} is not KEY=VALUE`);
    const key = a.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(changes, key)) throw new ImageMetaError('duplicate-key', `key ${JSON.stringify(key)} is given twice: keys must be unique`, { key });
    Object.defineProperty(changes, key, { value: parseCliValue(a.slice(eq + 1)), enumerable: true, writable: true, configurable: true });
  }
  await image.changeKeys(changes);
  return EXIT_OK;
}

async function cmdUnset(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...COMMON, own: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) return help('unset', io);
  const { image, rest } = await target(values, positionals);
  if (values.own) {
    if (rest.length > 0) throw new UsageError('--own drops the whole own value; do not name keys with it');
    await image.clearOwn();
    return EXIT_OK;
  }
  if (rest.length === 0) throw new UsageError('unset needs KEY arguments, or --own');
  const eff = await image.readEffective();
  for (const k of rest) {
    if (eff.object === null || !Object.prototype.hasOwnProperty.call(eff.object, k)) {
      io.err(`image-meta: key ${JSON.stringify(k)} is not set on ${image.path}; nothing changed\n`);
      return EXIT_NOT_FOUND;
    }
  }
  await image.changeKeys(Object.fromEntries(rest.map((k) => [k, undefined])));
  return EXIT_OK;
}

function dumpText(e: EffectiveMeta): string {
  const lines = [`image: ${e.image.path} (${e.image.format})`];
  if (e.from === null) lines.push('value: none (no image in the chain has one)');
  else {
    lines.push(`value: ${e.text}`);
    lines.push(`from:  ${e.from.path}${e.depth === 0 ? ' (its own)' : ` (inherited, ${e.depth} level${e.depth === 1 ? '' : 's'} up)`}`);
    if (e.object === null) lines.push('       (the stored text is not a JSON object)');
    for (const [k, v] of Object.entries(e.object ?? {})) lines.push(`  ${k} = ${JSON.stringify(v)}    [${e.sources[k]}]`);
  }
  lines.push('chain (top first):');
  e.chain.forEach((l, i) => {
    const mark = e.depth === i ? '*' : ' ';
    lines.push(`${mark} ${i} ${l.image.path} (${l.image.format}, ${l.store}): ${l.own === null ? 'inherits' : `own ${l.own}`}`);
  });
  return `${lines.join('\n')}\n`;
}

async function cmdDump(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...COMMON, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) return help('dump', io);
  const { image, rest } = await target(values, positionals);
  if (rest.length > 0) throw new UsageError(`dump takes no arguments after the image, got ${rest.join(' ')}`);
  const e = await image.readEffective({ full: true });
  if (values.json) {
    io.out(`${JSON.stringify({
      image: e.image, value: e.object ?? e.text, from: e.from, depth: e.depth, sources: e.sources,
      chain: e.chain.map((l) => ({ path: l.image.path, format: l.image.format, store: l.store, own: l.own })),
    }, null, 2)}\n`);
  } else io.out(dumpText(e));
  return EXIT_OK;
}

function help(cmd: string, io: Io): number {
  io.out(`${HELP[cmd]}\n`);
  return EXIT_OK;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = { get: cmdGet, set: cmdSet, unset: cmdUnset, dump: cmdDump };

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    if (cmd === 'help' && args[0] !== undefined && HELP[args[0]] !== undefined) return help(args[0], io);
    return help('main', io);
  }
  const run = COMMANDS[cmd];
  if (run === undefined) {
    io.err(`image-meta: unknown command ${JSON.stringify(cmd)}; commands: get, set, unset, dump (image-meta --help)\n`);
    return EXIT_USAGE;
  }
  try {
    return await run(args, io);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`image-meta ${cmd}: ${(e as Error).message}\nRun \`image-meta ${cmd} --help\`.\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ImageMetaError) {
      io.err(`image-meta ${cmd}: ${e.message}\n`);
      return EXIT_REFUSED;
    }
    io.err(`image-meta ${cmd}: ${(e as Error).message}\n`);
    return EXIT_REFUSED;
  }
}
