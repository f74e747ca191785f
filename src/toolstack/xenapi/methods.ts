// The XenAPI calls SMAPIv1 drivers make back into xapi, served from the
// toolstack's database with xapi's names, parameter order and error codes.
import { randomUUID } from 'node:crypto';
import type { XmlRpcValue } from '../../sdk/protocol/xmlrpc.js';
import { newRef, type StateDb } from '../db/state-db.js';
import { CLASSES, type ClassName, type ClassSchema, type DbRecord, NULL_REF, VDI } from '../db/schema.js';
import { XenApiError } from '../errors.js';
import { datetimeFromDate, fieldFromWire, fieldToWire, recordToWire } from './marshal.js';
import { evalWhere, parseWhere, WhereSyntaxError } from './where-expr.js';

/** Classes whose records drivers may read (and partly write) through the endpoint. */
const SERVED: readonly ClassName[] = ['SM', 'SR', 'PBD', 'VDI', 'host'];

/** VDI.db_introduce's 19 parameters after the session (XenAPI order). */
const DB_INTRODUCE_FIELDS = [
  'uuid', 'name_label', 'name_description', 'SR', 'type', 'sharable', 'read_only', 'other_config',
  'location', 'xenstore_data', 'sm_config', 'managed', 'virtual_size', 'physical_utilisation',
  'metadata_of_pool', 'is_a_snapshot', 'snapshot_time', 'snapshot_of', 'cbt_enabled',
] as const;

export interface SessionTable {
  has(ref: string): boolean;
  add(ref: string): void;
  delete(ref: string): void;
}

function str(method: string, v: XmlRpcValue | undefined, field: string): string {
  if (typeof v !== 'string') throw new XenApiError('FIELD_TYPE_ERROR', [field], `${method}: ${field} must be a string`);
  return v;
}

export class XenApiMethods {
  constructor(
    private readonly db: StateDb,
    private readonly sessions: SessionTable,
  ) {}

  /** Runs one call; returns the Value, or throws XenApiError for a Failure. */
  call(method: string, params: XmlRpcValue[]): XmlRpcValue {
    const dot = method.indexOf('.');
    const cls = method.slice(0, dot);
    const op = method.slice(dot + 1);
    if (cls === 'session') return this.session(method, op, params);
    const session = params[0];
    if (typeof session !== 'string' || !this.sessions.has(session))
      throw new XenApiError('SESSION_INVALID', [typeof session === 'string' ? session : '']);
    const args = params.slice(1);
    if (cls === 'VDI' && op === 'db_introduce') return this.dbIntroduce(method, args);
    if (cls === 'VDI' && op === 'db_forget') {
      this.arity(method, args, 1);
      const ref = this.mustGet('VDI', str(method, args[0], 'vdi'));
      this.db.destroy('VDI', ref.ref);
      return '';
    }
    if (cls === 'message' && op === 'create') return this.messageCreate(method, args);
    if (cls === 'session' || !(SERVED as string[]).includes(cls)) throw new XenApiError('MESSAGE_METHOD_UNKNOWN', [method]);
    return this.generic(method, CLASSES[cls as ClassName], op, args);
  }

  private arity(method: string, args: XmlRpcValue[], n: number): void {
    if (args.length !== n)
      throw new XenApiError('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, String(n + 1), String(args.length + 1)]);
  }

  private mustGet(name: ClassName, ref: string): DbRecord {
    const rec = this.db.get(name, ref);
    if (!rec) throw new XenApiError('HANDLE_INVALID', [name, ref]);
    return rec;
  }

  private session(method: string, op: string, params: XmlRpcValue[]): XmlRpcValue {
    switch (op) {
      case 'login_with_password':
      case 'slave_local_login_with_password': {
        const ref = newRef();
        this.sessions.add(ref);
        return ref;
      }
      case 'logout':
      case 'local_logout':
        if (typeof params[0] === 'string') this.sessions.delete(params[0]);
        return '';
      case 'get_this_host': {
        if (typeof params[0] !== 'string' || !this.sessions.has(params[0]))
          throw new XenApiError('SESSION_INVALID', [String(params[0] ?? '')]);
        return this.db.localHost().ref;
      }
      default:
        throw new XenApiError('MESSAGE_METHOD_UNKNOWN', [method]);
    }
  }

  private dbIntroduce(method: string, args: XmlRpcValue[]): XmlRpcValue {
    this.arity(method, args, DB_INTRODUCE_FIELDS.length);
    const fields: Record<string, unknown> = {};
    DB_INTRODUCE_FIELDS.forEach((f, i) => {
      fields[f] = fieldFromWire(f, VDI.fields[f]!, args[i]);
    });
    const uuid = String(fields['uuid']);
    this.mustGet('SR', String(fields['SR']));
    if (this.db.getByUuid('VDI', uuid)) throw new XenApiError('DB_UNIQUENESS_CONSTRAINT_VIOLATION', ['VDI', 'uuid', uuid], `a VDI with uuid ${uuid} already exists`);
    return this.db.create('VDI', fields).ref;
  }

  private messageCreate(method: string, args: XmlRpcValue[]): XmlRpcValue {
    this.arity(method, args, 5);
    const [name, priority, cls, objUuid, body] = args;
    const rec = this.db.create('message', {
      uuid: randomUUID(),
      name: str(method, name, 'name'),
      priority: fieldFromWire('priority', 'int', priority),
      cls: str(method, cls, 'cls'),
      obj_uuid: str(method, objUuid, 'obj_uuid'),
      timestamp: datetimeFromDate(new Date()),
      body: str(method, body, 'body'),
    });
    return rec.ref;
  }

  /**
   * A record as xapi returns it: the stored fields plus the derived ones drivers
   * read (SR.PBDs/VDIs, VDI.snapshots/VBDs...); smctl has no VMs, so VBD lists are empty.
   */
  private wire(cls: ClassSchema, rec: DbRecord, snapshotsOf?: ReadonlyMap<string, string[]>): Record<string, XmlRpcValue> {
    const out = recordToWire(cls, rec);
    if (cls.name === 'SR') {
      out['PBDs'] = this.db.where('PBD', 'SR', rec.ref).map((r) => r.ref);
      out['VDIs'] = this.db.where('VDI', 'SR', rec.ref).map((r) => r.ref);
      out['allowed_operations'] = [];
      out['current_operations'] = {};
      out['tags'] = [];
    } else if (cls.name === 'VDI') {
      out['snapshots'] = snapshotsOf ? [...(snapshotsOf.get(rec.ref) ?? [])] : this.db.where('VDI', 'snapshot_of', rec.ref).map((r) => r.ref);
      out['VBDs'] = [];
      out['crash_dumps'] = [];
      out['allowed_operations'] = [];
      out['current_operations'] = {};
      out['tags'] = [];
      out['parent'] = NULL_REF;
      out['storage_lock'] = false;
      out['is_tools_iso'] = false;
    } else if (cls.name === 'host') {
      out['PBDs'] = this.db.where('PBD', 'host', rec.ref).map((r) => r.ref);
    }
    return out;
  }

  /**
   * Every record of a class in wire form. VDI.snapshots comes from one pass over
   * the records instead of a query per VDI: listing 1000 VDIs stays linear.
   */
  private wireAll(cls: ClassSchema): { ref: string; wire: Record<string, XmlRpcValue> }[] {
    const recs = this.db.all(cls.name);
    let snapshotsOf: Map<string, string[]> | undefined;
    if (cls.name === 'VDI') {
      snapshotsOf = new Map();
      for (const r of recs) {
        const of = r['snapshot_of'];
        if (typeof of !== 'string' || of === '' || of === NULL_REF) continue;
        const list = snapshotsOf.get(of);
        if (list) list.push(r.ref);
        else snapshotsOf.set(of, [r.ref]);
      }
    }
    return recs.map((r) => ({ ref: r.ref, wire: this.wire(cls, r, snapshotsOf) }));
  }

  private generic(method: string, cls: ClassSchema, op: string, args: XmlRpcValue[]): XmlRpcValue {
    const name = cls.name;
    switch (op) {
      case 'get_record': {
        this.arity(method, args, 1);
        return this.wire(cls, this.mustGet(name, str(method, args[0], 'self')));
      }
      case 'get_by_uuid': {
        this.arity(method, args, 1);
        const uuid = str(method, args[0], 'uuid');
        const rec = this.db.getByUuid(name, uuid);
        if (!rec) throw new XenApiError('UUID_INVALID', [name, uuid]);
        return rec.ref;
      }
      case 'get_by_name_label': {
        this.arity(method, args, 1);
        const label = str(method, args[0], 'label');
        return this.db.all(name).filter((r) => r['name_label'] === label).map((r) => r.ref);
      }
      case 'get_all':
        this.arity(method, args, 0);
        return this.db.all(name).map((r) => r.ref);
      case 'get_all_records':
        this.arity(method, args, 0);
        return Object.fromEntries(this.wireAll(cls).map((r) => [r.ref, r.wire]));
      case 'get_all_records_where': {
        this.arity(method, args, 1);
        const text = str(method, args[0], 'expr');
        let expr;
        try {
          expr = parseWhere(text);
        } catch (e) {
          if (e instanceof WhereSyntaxError) throw new XenApiError('INTERNAL_ERROR', [`bad query '${text}': ${e.message}`]);
          throw e;
        }
        const out: Record<string, XmlRpcValue> = {};
        for (const { ref, wire } of this.wireAll(cls)) {
          const hit = evalWhere(expr, (f) => {
            const v = wire[f];
            if (v === undefined) return undefined;
            if (typeof v === 'boolean') return v ? 'true' : 'false';
            if (v instanceof Date) return datetimeFromDate(v);
            return typeof v === 'string' ? v : JSON.stringify(v);
          });
          if (hit) out[ref] = wire;
        }
        return out;
      }
    }
    let m = /^get_(\w+)$/.exec(op);
    if (m && (m[1]! in cls.fields)) {
      this.arity(method, args, 1);
      const rec = this.mustGet(name, str(method, args[0], 'self'));
      return fieldToWire(cls.fields[m[1]!]!, rec[m[1]!]);
    }
    if (m) {
      const derived = m[1]!;
      if (args.length === 1 && typeof args[0] === 'string') {
        const rec = this.db.get(name, args[0]);
        if (rec) {
          const v = this.wire(cls, rec)[derived];
          if (v !== undefined) return v;
        }
      }
    }
    m = /^set_(\w+)$/.exec(op);
    if (m && cls.settable.includes(m[1]!)) {
      this.arity(method, args, 2);
      const field = m[1]!;
      const rec = this.mustGet(name, str(method, args[0], 'self'));
      this.db.set(name, rec.ref, field, fieldFromWire(field, cls.fields[field]!, args[1]));
      return '';
    }
    m = /^(add_to|remove_from)_(\w+)$/.exec(op);
    if (m && cls.settable.includes(m[2]!) && cls.fields[m[2]!] === 'map') {
      const field = m[2]!;
      const adding = m[1] === 'add_to';
      this.arity(method, args, adding ? 3 : 2);
      const rec = this.mustGet(name, str(method, args[0], 'self'));
      const key = str(method, args[1], 'key');
      const map = { ...(rec[field] as Record<string, string>) };
      if (adding) {
        if (key in map) throw new XenApiError('MAP_DUPLICATE_KEY', [name, field, rec.ref, key]);
        map[key] = str(method, args[2], 'value');
      } else {
        delete map[key];
      }
      this.db.set(name, rec.ref, field, map);
      return '';
    }
    throw new XenApiError('MESSAGE_METHOD_UNKNOWN', [method]);
  }
}
