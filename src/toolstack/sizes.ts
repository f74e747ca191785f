// Parsing of xe's value syntaxes, matching xapi's CLI (ocaml/xapi-cli-server/record_util.ml).

/**
 * Bytes from a size with an optional unit, as xe's Record_util.bytes_of_string:
 * `<int>[ ]<suffix>` where suffix (case-insensitive) is '', b, bytes, k/kb/kib,
 * m/mb/mib, g/gb/gib, t/tb/tib — all powers of 1024. Negative sizes are refused.
 */
export function parseSize(field: string, text: string): bigint {
  const m = /^\s*([+-]?\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  const fail = (): never => {
    throw new RangeError(
      `Failed to parse field '${field}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '${text}'`,
    );
  };
  if (!m) return fail();
  const size = BigInt(m[1]!);
  if (size < 0n) return fail();
  const shift: Record<string, bigint> = {
    '': 0n, b: 0n, bytes: 0n,
    k: 10n, kb: 10n, kib: 10n,
    m: 20n, mb: 20n, mib: 20n,
    g: 30n, gb: 30n, gib: 30n,
    t: 40n, tb: 40n, tib: 40n,
  };
  const s = shift[m[2]!.toLowerCase()];
  if (s === undefined) return fail();
  const bytes = size << s;
  if (bytes > 0x7fffffffffffffffn) return fail(); // xapi holds sizes in Int64
  return bytes;
}

/** A boolean as xe's Record_util.bool_of_string accepts it. */
export function parseBool(field: string, text: string): boolean {
  const t = text.toLowerCase();
  if (['true', 't', 'yes', 'y', '1'].includes(t)) return true;
  if (['false', 'f', 'no', 'n', '0'].includes(t)) return false;
  throw new RangeError(
    `Failed to parse field '${field}': expected 'true','t','yes','y','1','false','f','no','n','0', got '${text}'`,
  );
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}
