// The toolstack's database: one SQLite file (WAL, busy timeout) with a table per
// XenAPI class. Commands wrap their writes in one IMMEDIATE transaction, which
// also covers what drivers write through the XenAPI endpoint during the call, so
// a failed command leaves the file as it was.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CLASSES, type ClassName, type ClassSchema, type DbRecord, type FieldKind } from './schema.js';

const JSON_KINDS: ReadonlySet<FieldKind> = new Set(['map', 'intmap', 'set']);

function sqlType(kind: FieldKind): string {
  if (kind === 'int' || kind === 'bool') return 'INTEGER';
  if (kind === 'float') return 'REAL';
  return 'TEXT';
}

export function newRef(): string {
  return `OpaqueRef:${randomUUID()}`;
}

export interface StateDbOptions {
  /** How long a writer waits for another command's transaction, in ms. */
  busyTimeoutMs?: number;
}

export class StateDb {
  readonly sql: Database.Database;
  /** Prepared statements by SQL text: preparing costs more than running a one-row query. */
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(readonly path: string, opts: StateDbOptions) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.sql = new Database(path, { timeout: opts.busyTimeoutMs ?? 600_000 });
    this.sql.pragma('journal_mode = WAL');
    this.sql.pragma('synchronous = NORMAL');
    this.createSchema();
  }

  static open(path: string, opts: StateDbOptions = {}): StateDb {
    return new StateDb(path, opts);
  }

  close(): void {
    this.statements.clear();
    if (this.sql.open) this.sql.close();
  }

  private stmt(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (st === undefined) {
      st = this.sql.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  private createSchema(): void {
    const ddl: string[] = [];
    for (const cls of Object.values(CLASSES)) {
      const cols = Object.entries(cls.fields)
        .filter(([f]) => f !== 'uuid')
        .map(([f, k]) => `"${f}" ${sqlType(k)}`);
      ddl.push(`CREATE TABLE IF NOT EXISTS ${cls.table} (ref TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, ${cols.join(', ')})`);
    }
    ddl.push('CREATE INDEX IF NOT EXISTS vdi_sr_location ON vdi ("SR", location)');
    ddl.push('CREATE INDEX IF NOT EXISTS pbd_sr ON pbd ("SR")');
    // Local attachments made by vdi-attach (xe has VBDs for this; smctl has no VMs).
    ddl.push(
      'CREATE TABLE IF NOT EXISTS vdi_attachment (vdi TEXT PRIMARY KEY, sr TEXT NOT NULL, host TEXT NOT NULL, mode TEXT NOT NULL, result TEXT NOT NULL, attached_at TEXT NOT NULL)',
    );
    this.sql.exec(ddl.join(';\n'));
  }

  // ---- transactions --------------------------------------------------------

  /**
   * Runs `fn` inside one IMMEDIATE transaction: committed when it resolves,
   * rolled back when it throws. Async so a driver can run (and call back) inside.
   */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.sql.inTransaction) return fn();
    this.sql.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn();
      this.sql.exec('COMMIT');
      return result;
    } catch (e) {
      if (this.sql.inTransaction) this.sql.exec('ROLLBACK');
      throw e;
    }
  }

  // ---- value conversion ----------------------------------------------------

  private toColumn(kind: FieldKind, v: unknown): unknown {
    if (JSON_KINDS.has(kind)) return JSON.stringify(v ?? (kind === 'set' ? [] : {}));
    if (kind === 'bool') return v ? 1 : 0;
    if (kind === 'int') return typeof v === 'bigint' ? Number(v) : Number(v ?? 0);
    return v ?? '';
  }

  private fromRow(cls: ClassSchema, row: Record<string, unknown>): DbRecord {
    const rec: DbRecord = { ref: String(row['ref']) };
    for (const [f, kind] of Object.entries(cls.fields)) {
      const v = row[f];
      if (JSON_KINDS.has(kind)) rec[f] = JSON.parse(String(v ?? (kind === 'set' ? '[]' : '{}')));
      else if (kind === 'bool') rec[f] = v === 1 || v === 1n;
      else if (kind === 'int') rec[f] = Number(v ?? 0);
      else rec[f] = v;
    }
    return rec;
  }

  // ---- generic record access -----------------------------------------------

  schema(name: ClassName): ClassSchema {
    return CLASSES[name];
  }

  /** Inserts a record; missing fields take the class defaults. Returns the stored record. */
  create(name: ClassName, fields: Record<string, unknown>, ref: string = newRef()): DbRecord {
    const cls = CLASSES[name];
    const full: Record<string, unknown> = { ...cls.defaults, uuid: randomUUID(), ...fields };
    const cols = Object.keys(cls.fields);
    for (const f of Object.keys(full)) if (!(f in cls.fields)) throw new Error(`${name} has no field ${f}`);
    for (const f of cols) if (full[f] === undefined) throw new Error(`${name}.${f} is required`);
    const stmt = this.stmt(
      `INSERT INTO ${cls.table} (ref, ${cols.map((c) => `"${c}"`).join(', ')}) VALUES (?, ${cols.map(() => '?').join(', ')})`,
    );
    stmt.run(ref, ...cols.map((c) => this.toColumn(cls.fields[c]!, full[c])));
    return this.get(name, ref)!;
  }

  get(name: ClassName, ref: string): DbRecord | undefined {
    const cls = CLASSES[name];
    const row = this.stmt(`SELECT * FROM ${cls.table} WHERE ref = ?`).get(ref) as Record<string, unknown> | undefined;
    return row ? this.fromRow(cls, row) : undefined;
  }

  getByUuid(name: ClassName, uuid: string): DbRecord | undefined {
    const cls = CLASSES[name];
    const row = this.stmt(`SELECT * FROM ${cls.table} WHERE uuid = ?`).get(uuid) as Record<string, unknown> | undefined;
    return row ? this.fromRow(cls, row) : undefined;
  }

  all(name: ClassName): DbRecord[] {
    const cls = CLASSES[name];
    const rows = this.stmt(`SELECT * FROM ${cls.table} ORDER BY rowid`).all() as Record<string, unknown>[];
    return rows.map((r) => this.fromRow(cls, r));
  }

  /** Records whose scalar `field` equals `value` (refs, strings, bools, ints). */
  where(name: ClassName, field: string, value: unknown): DbRecord[] {
    const cls = CLASSES[name];
    const kind = cls.fields[field];
    if (!kind) throw new Error(`${name} has no field ${field}`);
    const rows = this
      .stmt(`SELECT * FROM ${cls.table} WHERE "${field}" = ? ORDER BY rowid`)
      .all(this.toColumn(kind, value)) as Record<string, unknown>[];
    return rows.map((r) => this.fromRow(cls, r));
  }

  set(name: ClassName, ref: string, field: string, value: unknown): void {
    const cls = CLASSES[name];
    const kind = cls.fields[field];
    if (!kind) throw new Error(`${name} has no field ${field}`);
    this.stmt(`UPDATE ${cls.table} SET "${field}" = ? WHERE ref = ?`).run(this.toColumn(kind, value), ref);
  }

  destroy(name: ClassName, ref: string): void {
    this.stmt(`DELETE FROM ${CLASSES[name].table} WHERE ref = ?`).run(ref);
  }

  // ---- the local host --------------------------------------------------------

  /** The single host record of this toolstack, created on first use. */
  localHost(): DbRecord {
    const hosts = this.all('host');
    if (hosts[0]) return hosts[0];
    return this.create('host', { name_label: hostname(), hostname: hostname() });
  }

  // ---- local attachments ---------------------------------------------------

  attachment(vdiRef: string): { vdi: string; sr: string; host: string; mode: string; result: unknown; attached_at: string } | undefined {
    const row = this.sql.prepare('SELECT * FROM vdi_attachment WHERE vdi = ?').get(vdiRef) as
      | { vdi: string; sr: string; host: string; mode: string; result: string; attached_at: string }
      | undefined;
    return row ? { ...row, result: JSON.parse(row.result) } : undefined;
  }

  attachmentsOfSr(srRef: string): string[] {
    return (this.sql.prepare('SELECT vdi FROM vdi_attachment WHERE sr = ?').all(srRef) as { vdi: string }[]).map((r) => r.vdi);
  }

  addAttachment(vdiRef: string, srRef: string, hostRef: string, mode: string, result: unknown): void {
    this.sql
      .prepare('INSERT INTO vdi_attachment (vdi, sr, host, mode, result, attached_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(vdiRef, srRef, hostRef, mode, JSON.stringify(result), new Date().toISOString());
  }

  removeAttachment(vdiRef: string): void {
    this.sql.prepare('DELETE FROM vdi_attachment WHERE vdi = ?').run(vdiRef);
  }

  /** Every table's rows, for comparing the database before and after a command. */
  dump(): Record<string, unknown[]> {
    const out: Record<string, unknown[]> = {};
    const tables = this.sql
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all() as { name: string }[];
    for (const { name } of tables) out[name] = this.sql.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all();
    return out;
  }
}

