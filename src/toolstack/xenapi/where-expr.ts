// xapi's record query language as drivers use it in get_all_records_where:
//   field "SR" = "OpaqueRef:..."   combined with `and` / `or`, `not`, parentheses, `true`/`false`.
// Values compare as xapi's DB stores them: strings, "true"/"false", decimal ints.

type Expr =
  | { op: 'const'; value: boolean }
  | { op: 'eq'; field: string; value: string }
  | { op: 'not'; e: Expr }
  | { op: 'and' | 'or'; a: Expr; b: Expr };

export class WhereSyntaxError extends Error {}

function tokenize(text: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|(\(|\)|=|<>)|([A-Za-z_]+))/y;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new WhereSyntaxError(`cannot parse query at '${text.slice(pos)}'`);
    if (m[1] !== undefined) out.push(`"${m[1].replace(/\\(.)/g, '$1')}`);
    else out.push(m[2] ?? m[3]!.toLowerCase());
    pos = re.lastIndex;
  }
  return out;
}

export function parseWhere(text: string): Expr {
  const toks = tokenize(text);
  let i = 0;
  const peek = () => toks[i];
  const next = () => {
    const t = toks[i++];
    if (t === undefined) throw new WhereSyntaxError('query ended early');
    return t;
  };
  const str = () => {
    const t = next();
    if (!t.startsWith('"')) throw new WhereSyntaxError(`expected a quoted string, found ${t}`);
    return t.slice(1);
  };
  const atom = (): Expr => {
    const t = next();
    if (t === '(') {
      const e = orExpr();
      if (next() !== ')') throw new WhereSyntaxError('missing )');
      return e;
    }
    if (t === 'true' || t === 'false') return { op: 'const', value: t === 'true' };
    if (t === 'not') return { op: 'not', e: atom() };
    if (t === 'field') {
      const field = str();
      const cmp = next();
      if (cmp !== '=' && cmp !== '<>') throw new WhereSyntaxError(`expected = or <>, found ${cmp}`);
      const value = str();
      const eq: Expr = { op: 'eq', field, value };
      return cmp === '=' ? eq : { op: 'not', e: eq };
    }
    throw new WhereSyntaxError(`unexpected ${t}`);
  };
  const andExpr = (): Expr => {
    let e = atom();
    while (peek() === 'and') {
      i++;
      e = { op: 'and', a: e, b: atom() };
    }
    return e;
  };
  const orExpr = (): Expr => {
    let e = andExpr();
    while (peek() === 'or') {
      i++;
      e = { op: 'or', a: e, b: andExpr() };
    }
    return e;
  };
  const e = orExpr();
  if (i !== toks.length) throw new WhereSyntaxError(`unexpected ${toks[i]}`);
  return e;
}

/** `fieldText(name)` gives a record's field as xapi's DB text, or undefined if no such field. */
export function evalWhere(e: Expr, fieldText: (field: string) => string | undefined): boolean {
  switch (e.op) {
    case 'const':
      return e.value;
    case 'eq':
      return fieldText(e.field) === e.value;
    case 'not':
      return !evalWhere(e.e, fieldText);
    case 'and':
      return evalWhere(e.a, fieldText) && evalWhere(e.b, fieldText);
    case 'or':
      return evalWhere(e.a, fieldText) || evalWhere(e.b, fieldText);
  }
}
