// XenAPI's XML-RPC value conventions (xapi's generated marshallers): int64 as a
// decimal string, bools as <boolean>, datetimes as dateTime.iso8601, maps as
// structs, sets as arrays, refs as strings. Incoming values are accepted in the
// forms Python's XenAPI bindings send (sm passes sizes as str or int).
import type { XmlRpcValue } from '../../sdk/protocol/xmlrpc.js';
import { isStruct } from '../../sdk/protocol/xmlrpc.js';
import type { ClassSchema, DbRecord, FieldKind } from '../db/schema.js';
import { XenApiError } from '../errors.js';

export function datetimeToWire(text: string): Date {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(text);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : new Date(0);
}

export function datetimeFromDate(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}Z`;
}

export function fieldToWire(kind: FieldKind, v: unknown): XmlRpcValue {
  switch (kind) {
    case 'int':
      return String(v ?? 0);
    case 'float':
      return Number(v ?? 0);
    case 'bool':
      return Boolean(v);
    case 'datetime':
      return datetimeToWire(String(v ?? ''));
    case 'map':
      return { ...(v as Record<string, string>) };
    case 'intmap':
      return Object.fromEntries(Object.entries(v as Record<string, number>).map(([k, n]) => [k, String(n)]));
    case 'set':
      return [...(v as string[])];
    default:
      return String(v ?? '');
  }
}

export function recordToWire(cls: ClassSchema, rec: DbRecord): Record<string, XmlRpcValue> {
  const out: Record<string, XmlRpcValue> = {};
  for (const [f, kind] of Object.entries(cls.fields)) out[f] = fieldToWire(kind, rec[f]);
  return out;
}

const typeError = (field: string): never => {
  throw new XenApiError('FIELD_TYPE_ERROR', [field]);
};

/** Converts an incoming XML-RPC value for `field` into the stored form, or FIELD_TYPE_ERROR. */
export function fieldFromWire(field: string, kind: FieldKind, v: XmlRpcValue | undefined): unknown {
  switch (kind) {
    case 'int': {
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
      return typeError(field);
    }
    case 'float': {
      const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
      return Number.isNaN(n) ? typeError(field) : n;
    }
    case 'bool': {
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      return typeError(field);
    }
    case 'datetime': {
      if (v instanceof Date) return datetimeFromDate(v);
      if (typeof v === 'string') {
        if (v === '') return '19700101T00:00:00Z';
        const d = datetimeToWire(v);
        if (!/^\d{4}-?\d{2}-?\d{2}T\d{2}:\d{2}:\d{2}/.test(v)) return typeError(field);
        return datetimeFromDate(d);
      }
      return typeError(field);
    }
    case 'map': {
      if (!isStruct(v)) return typeError(field);
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x === 'string') out[k] = x;
        else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
        else return typeError(field);
      }
      return out;
    }
    case 'intmap': {
      if (!isStruct(v)) return typeError(field);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, Number(x)]));
    }
    case 'set': {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return typeError(field);
      return [...new Set(v as string[])];
    }
    default:
      if (typeof v !== 'string') return typeError(field);
      return v;
  }
}
