// xe's record printing: `name ( RO)<pad>: value`, names padded to one column,
// a blank line after each record; --minimal prints the uuids comma-separated.
import type { DbRecord } from '../../toolstack/db/schema.js';
import type { StateDb } from '../../toolstack/db/state-db.js';
import { UsageError } from '../../toolstack/errors.js';
import type { ClassView, FieldView } from './views.js';

/** Fields selected by `params=` (default list, `all`, or a comma list of names). */
export function selectFields(view: ClassView, params: string | undefined): FieldView[] {
  if (params === undefined) return view.defaults.map((n) => view.fields.find((f) => f.name === n)!);
  if (params === 'all') return view.fields;
  return params.split(',').map((raw) => {
    const name = raw.trim();
    const f = view.fields.find((x) => x.name === name);
    if (!f) throw new UsageError(`unknown field '${name}' in params= (known: ${view.fields.map((x) => x.name).join(', ')}, or all)`);
    return f;
  });
}

export function formatPairs(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([l]) => l.length));
  return pairs.map(([l, v]) => `${l.padEnd(width)}: ${v}`.trimEnd()).join('\n') + '\n';
}

export function formatRecord(rec: DbRecord, fields: FieldView[], db: StateDb): string {
  return formatPairs(fields.map((f) => [`${f.name} (${f.access})${f.tag ? ` ${f.tag}` : ''}`, f.get(rec, db)]));
}

export function formatRecords(recs: DbRecord[], fields: FieldView[], db: StateDb): string {
  return recs.map((r) => `${formatRecord(r, fields, db)}\n`).join('');
}
