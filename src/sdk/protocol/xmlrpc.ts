// XML-RPC codec: the mapping between XML-RPC documents and JavaScript values.
//
// Parsing accepts everything xapi and Python's xmlrpc.client send: bare
// `<value>text</value>` strings, `<value/>`, every scalar type, arrays, structs
// and any Unicode. Encoding writes what Python's xmlrpc.client.dumps writes,
// because that is what sm's drivers print and what xapi has always parsed.
import { createRequire } from 'node:module';
import { readPlainXml, type XmlEvents } from './plain-xml.js';

export type XmlRpcValue =
  | string
  | number
  | boolean
  | null
  | Date
  | Uint8Array
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue };


export interface MethodCall {
  methodName: string;
  params: XmlRpcValue[];
}

export interface Fault {
  faultCode: number;
  faultString: string;
}

export type MethodResponse = { kind: 'result'; value: XmlRpcValue } | { kind: 'fault'; fault: Fault };

export class XmlRpcParseError extends Error {
  override name = 'XmlRpcParseError';
}

// ---------------------------------------------------------------------------
// Parsing: elements and text come as events, from plain-xml.ts for the plain
// XML that XML-RPC peers write, else from saxes (a maintained, strict,
// streaming XML 1.0 parser: it checks well-formedness, character ranges and
// entity references, and says what is wrong). This module maps them: the
// envelope (methodCall, params, fault, ...) as a small element tree, and each
// <value> decoded as it streams by, so a several-MB answer (1000 VDI records)
// never becomes a DOM.
// A mapping error is kept with the value it belongs to and raised only when
// that value is used, after the whole document proved well-formed: the same
// errors, in the same order, as decoding a finished tree.
// DOCTYPE is refused: XML-RPC has none, and an entity declaration is the
// classic way to blow up a parser.

interface Elem {
  name: string;
  children: Elem[];
  text: string;
  /** For a <value>: what it decodes to, or why it does not. */
  decoded?: { value: XmlRpcValue } | { error: XmlRpcParseError };
}

type Outcome = { value: XmlRpcValue } | { error: XmlRpcParseError };

const SCALARS = new Set(['string', 'i4', 'int', 'i8', 'boolean', 'double', 'dateTime.iso8601', 'base64', 'nil']);

/** One open element inside a <value>, and what it has gathered so far. */
type Frame =
  | { k: 'elem'; el: Elem }
  | { k: 'value'; text: string; types: number; result: Outcome | undefined; onDone: (o: Outcome) => void }
  | { k: 'scalar'; name: string; text: string; owner: Frame & { k: 'value' } }
  | { k: 'unknown'; name: string; owner: Frame & { k: 'value' } }
  | { k: 'array'; datas: number; result: Outcome | undefined; owner: Frame & { k: 'value' } }
  | { k: 'data'; out: XmlRpcValue[]; error: XmlRpcParseError | undefined; owner: Frame & { k: 'array' } }
  | { k: 'struct'; out: Record<string, XmlRpcValue>; error: XmlRpcParseError | undefined; owner: Frame & { k: 'value' } }
  | { k: 'member'; names: number; name: string; values: number; result: Outcome | undefined; owner: Frame & { k: 'struct' } }
  | { k: 'name'; text: string; owner: Frame & { k: 'member' } }
  | { k: 'skip' };

function failure(message: string): Outcome {
  return { error: new XmlRpcParseError(message) };
}

function scalarValue(name: string, text: string): Outcome {
  try {
    return { value: decodeScalar(name, text) };
  } catch (e) {
    if (e instanceof XmlRpcParseError) return { error: e };
    throw e;
  }
}

/** The receiver of a document's elements and text: builds the envelope and decodes each <value> as it goes. */
function treeBuilder(): XmlEvents & { root: Elem } {
  const root: Elem = { name: '', children: [], text: '' };
  let top: Frame = { k: 'elem', el: root };
  const stack: Frame[] = [];
  const skip: Frame = { k: 'skip' };
  const push = (f: Frame) => {
    stack.push(top);
    top = f;
  };
  const newValue = (onDone: (o: Outcome) => void): Frame => ({ k: 'value', text: '', types: 0, result: undefined, onDone });
  const open = (name: string): void => {
    const f = top;
    switch (f.k) {
      case 'elem': {
        const el: Elem = { name, children: [], text: '' };
        f.el.children.push(el);
        push(name === 'value' ? newValue((o) => (el.decoded = o)) : { k: 'elem', el });
        return;
      }
      case 'value':
        f.types++;
        if (name === 'array') push({ k: 'array', datas: 0, result: undefined, owner: f });
        else if (name === 'struct') push({ k: 'struct', out: Object.create(null) as Record<string, XmlRpcValue>, error: undefined, owner: f });
        else if (SCALARS.has(name)) push({ k: 'scalar', name, text: '', owner: f });
        else push({ k: 'unknown', name, owner: f });
        return;
      case 'array':
        if (name === 'data') {
          f.datas++;
          push({ k: 'data', out: [], error: undefined, owner: f });
        } else push(skip);
        return;
      case 'data':
        if (name === 'value') {
          push(
            newValue((o) => {
              if (f.error) return;
              if ('error' in o) f.error = o.error;
              else f.out.push(o.value);
            }),
          );
        } else {
          f.error ??= new XmlRpcParseError(`<data> may only hold <value>, found <${name}>`);
          push(skip);
        }
        return;
      case 'struct':
        if (name === 'member') push({ k: 'member', names: 0, name: '', values: 0, result: undefined, owner: f });
        else {
          f.error ??= new XmlRpcParseError(`<struct> may only hold <member>, found <${name}>`);
          push(skip);
        }
        return;
      case 'member':
        if (name === 'name') {
          f.names++;
          push({ k: 'name', text: '', owner: f });
        } else if (name === 'value') {
          f.values++;
          push(newValue((o) => (f.result = o)));
        } else push(skip);
        return;
      default:
        // Elements inside a scalar or a name add nothing to the value (their text is not the scalar's).
        push(skip);
    }
  };
  const close = (): void => {
    const f = top;
    top = stack.pop()!;
    switch (f.k) {
      case 'value': {
        let o: Outcome;
        if (f.types > 1) o = failure('<value> must hold exactly one type element');
        else o = f.result ?? { value: f.text }; // bare string, or <value/> = ''
        f.onDone(o);
        return;
      }
      case 'scalar':
        f.owner.result = scalarValue(f.name, f.text);
        return;
      case 'unknown':
        f.owner.result = failure(`unknown XML-RPC type <${f.name}>`);
        return;
      case 'array':
        f.owner.result = f.datas !== 1 ? failure('<array>: expected exactly one <data>') : f.result!;
        return;
      case 'data':
        if (f.owner.datas === 1) f.owner.result = f.error ? { error: f.error } : { value: f.out };
        return;
      case 'struct':
        f.owner.result = f.error ? { error: f.error } : { value: f.out };
        return;
      case 'member': {
        const s = f.owner;
        if (s.error) return;
        if (f.names !== 1) s.error = new XmlRpcParseError('<member>: expected exactly one <name>');
        else if (f.values !== 1) s.error = new XmlRpcParseError(`<member> '${f.name}': expected exactly one <value>`);
        else if ('error' in f.result!) s.error = f.result.error;
        else s.out[f.name] = f.result!.value;
        return;
      }
      case 'name':
        if (f.owner.names === 1) f.owner.name = f.text;
        return;
      default:
    }
  };
  const text = (t: string): void => {
    const f = top;
    if (f.k === 'elem') f.el.text += t;
    else if (f.k === 'value' || f.k === 'scalar' || f.k === 'name') f.text += t;
  };
  return { root, open, close, text };
}

/** Reports `xml` to `ev` with saxes, the full XML 1.0 parser; throws XmlRpcParseError if it is not well-formed. */
export function readXmlWithSaxes(xml: string, ev: XmlEvents): void {
  // Loaded on first use: most documents never need it, and a driver call pays for every module it loads.
  const { SaxesParser } = createRequire(import.meta.url)('saxes') as typeof import('saxes');
  const parser = new SaxesParser();
  parser.on('error', (e) => {
    throw new XmlRpcParseError(`not well-formed XML: ${e.message}`);
  });
  parser.on('doctype', () => {
    throw new XmlRpcParseError('not well-formed XML-RPC: DOCTYPE declarations are not allowed');
  });
  parser.on('opentag', ({ name }) => ev.open(name));
  parser.on('closetag', () => ev.close());
  parser.on('text', (t) => ev.text(t));
  parser.on('cdata', (t) => ev.text(t));
  parser.write(xml).close();
}

/**
 * Reports `xml` to a receiver made by `receiver`: the plain-XML reader's when
 * the document is plain, else a fresh one fed by saxes, which accepts it or
 * throws XmlRpcParseError saying what is wrong. Returns the receiver that saw
 * the whole document.
 */
export function readXml<R extends XmlEvents>(xml: string, receiver: () => R): R {
  const fast = receiver();
  if (readPlainXml(xml, fast)) return fast;
  const full = receiver();
  readXmlWithSaxes(xml, full);
  return full;
}

function parseTree(xml: string): Elem {
  const doc = readXml(xml, treeBuilder).root.children[0];
  if (!doc) throw new XmlRpcParseError('not well-formed XML: no root element');
  return doc;
}

/** The one child element named `name` of `el`. */
function only(el: Elem, name: string, what: string): Elem {
  let match: Elem | undefined;
  let n = 0;
  for (const c of el.children) {
    if (c.name === name) {
      match = c;
      n++;
    }
  }
  if (n !== 1) throw new XmlRpcParseError(`${what}: expected exactly one <${name}>`);
  return match!;
}

function decodeInt(text: string, tag: string): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new XmlRpcParseError(`<${tag}> holds '${text}', not an integer`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw new XmlRpcParseError(`<${tag}> value ${t} is outside the exact integer range`);
  return n;
}

// dateTime.iso8601 as xapi and Python write it: 19700101T00:00:00Z or 20240102T03:04:05
function decodeDate(text: string): Date {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) throw new XmlRpcParseError(`<dateTime.iso8601> holds '${text}', not an ISO 8601 date`);
  const [, y, mo, d, h, mi, s, tz] = m;
  let iso = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  iso += !tz || tz === 'Z' ? 'Z' : tz.length === 5 ? `${tz.slice(0, 3)}:${tz.slice(3)}` : tz;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new XmlRpcParseError(`<dateTime.iso8601> holds '${text}', not a valid date`);
  return date;
}

function decodeScalar(tag: string, text: string): XmlRpcValue {
  switch (tag) {
    case 'string':
      return text;
    case 'i4':
    case 'int':
    case 'i8':
      return decodeInt(text, tag);
    case 'boolean': {
      const b = text.trim();
      if (b !== '0' && b !== '1') throw new XmlRpcParseError(`<boolean> holds '${text}', not 0 or 1`);
      return b === '1';
    }
    case 'double': {
      const n = Number(text.trim());
      if (text.trim() === '' || Number.isNaN(n)) throw new XmlRpcParseError(`<double> holds '${text}', not a number`);
      return n;
    }
    case 'dateTime.iso8601':
      return decodeDate(text);
    case 'base64':
      return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'base64'));
    default: // nil
      return null;
  }
}

/** The value a <value> element decoded to; its mapping error, if it had one. */
function decodeValue(valueEl: Elem): XmlRpcValue {
  const d = valueEl.decoded!;
  if ('error' in d) throw d.error;
  return d.value;
}

export function parseMethodCall(xml: string): MethodCall {
  const root = parseTree(xml);
  if (root.name !== 'methodCall') throw new XmlRpcParseError(`root element is <${root.name}>, not <methodCall>`);
  const methodName = only(root, 'methodName', '<methodCall>').text.trim();
  if (methodName === '') throw new XmlRpcParseError('<methodName> is empty');
  const paramsEl = root.children.find((c) => c.name === 'params');
  const params = paramsEl
    ? paramsEl.children.map((p) => {
        if (p.name !== 'param') throw new XmlRpcParseError(`<params> may only hold <param>, found <${p.name}>`);
        return decodeValue(only(p, 'value', '<param>'));
      })
    : [];
  return { methodName, params };
}

export function parseMethodResponse(xml: string): MethodResponse {
  const root = parseTree(xml);
  if (root.name !== 'methodResponse') throw new XmlRpcParseError(`root element is <${root.name}>, not <methodResponse>`);
  const faultEl = root.children.find((c) => c.name === 'fault');
  if (faultEl) {
    const v = decodeValue(only(faultEl, 'value', '<fault>'));
    if (!isStruct(v)) throw new XmlRpcParseError('<fault> value is not a struct');
    const code = v['faultCode'];
    const text = v['faultString'];
    return {
      kind: 'fault',
      fault: {
        faultCode: typeof code === 'number' ? code : Number(code),
        faultString: typeof text === 'string' ? text : String(text ?? ''),
      },
    };
  }
  const params = only(root, 'params', '<methodResponse>');
  const param = only(params, 'param', '<params>');
  return { kind: 'result', value: decodeValue(only(param, 'value', '<param>')) };
}

export function isStruct(v: XmlRpcValue | undefined): v is { [key: string]: XmlRpcValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

// ---------------------------------------------------------------------------
// Encoding, byte-compatible with Python's xmlrpc.client.dumps.

const NEEDS_ESCAPE = /[&<>]/;

export function escapeXml(s: string): string {
  // most strings (refs, uuids, sizes) need no escaping: skip the three passes
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function encodeInto(v: XmlRpcValue, out: string[]): void {
  if (v === null) {
    out.push('<value><nil/></value>');
  } else if (typeof v === 'string') {
    out.push('<value><string>', escapeXml(v), '</string></value>\n');
  } else if (typeof v === 'boolean') {
    out.push('<value><boolean>', v ? '1' : '0', '</boolean></value>\n');
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= 0x7fffffff) out.push('<value><int>', String(v), '</int></value>\n');
    else if (Number.isFinite(v)) out.push('<value><double>', repr(v), '</double></value>\n');
    else throw new TypeError(`cannot encode ${v} in XML-RPC`);
  } else if (v instanceof Date) {
    const s = `${pad(v.getUTCFullYear(), 4)}${pad(v.getUTCMonth() + 1)}${pad(v.getUTCDate())}T${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}`;
    out.push('<value><dateTime.iso8601>', s, '</dateTime.iso8601></value>\n');
  } else if (v instanceof Uint8Array) {
    out.push('<value><base64>\n', Buffer.from(v).toString('base64'), '\n</base64></value>\n');
  } else if (Array.isArray(v)) {
    out.push('<value><array><data>\n');
    for (const item of v) encodeInto(item, out);
    out.push('</data></array></value>\n');
  } else {
    out.push('<value><struct>\n');
    for (const [k, item] of Object.entries(v)) {
      out.push('<member>\n<name>', escapeXml(k), '</name>\n');
      encodeInto(item, out);
      out.push('</member>\n');
    }
    out.push('</struct></value>\n');
  }
}

// Python prints floats with repr(): integral doubles keep a '.0'.
function repr(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1e16 ? `${n}.0` : String(n);
}

export function encodeValue(v: XmlRpcValue): string {
  const out: string[] = [];
  encodeInto(v, out);
  return out.join('');
}

const DECLARATION = "<?xml version='1.0'?>\n";

/** The methodResponse for a successful call, as xmlrpc.client.dumps((v,), methodresponse=True) writes it. */
export function encodeResponse(v: XmlRpcValue): string {
  return `${DECLARATION}<methodResponse>\n<params>\n<param>\n${encodeValue(v)}</param>\n</params>\n</methodResponse>\n`;
}

/** A fault response, as xmlrpc.client.dumps(Fault(code, text)) writes it. */
export function encodeFault(fault: Fault): string {
  return `${DECLARATION}<methodResponse>\n<fault>\n${encodeValue({ faultCode: fault.faultCode, faultString: fault.faultString })}</fault>\n</methodResponse>\n`;
}

/** A methodCall document, as xmlrpc.client.dumps(params, methodname) writes it. */
export function encodeMethodCall(methodName: string, params: XmlRpcValue[]): string {
  const ps = params.map((p) => `<param>\n${encodeValue(p)}</param>\n`).join('');
  return `${DECLARATION}<methodCall>\n<methodName>${escapeXml(methodName)}</methodName>\n<params>\n${ps}</params>\n</methodCall>\n`;
}

/**
 * A methodCall the way xapi writes it (ocaml/libs/http-lib/xMLRPC.ml): strings as
 * bare `<value>text</value>` and the empty string as `<value/>`, no whitespace.
 */
export function encodeMethodCallXapiStyle(methodName: string, params: XmlRpcValue[]): string {
  const enc = (v: XmlRpcValue): string => {
    if (typeof v === 'string') return v === '' ? '<value/>' : `<value>${escapeXml(v)}</value>`;
    if (Array.isArray(v)) return `<value><array><data>${v.map(enc).join('')}</data></array></value>`;
    if (isStruct(v))
      return `<value><struct>${Object.entries(v)
        .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${enc(x)}</member>`)
        .join('')}</struct></value>`;
    return encodeValue(v).replace(/\n/g, '');
  };
  return `<?xml version="1.0"?><methodCall><methodName>${escapeXml(methodName)}</methodName><params>${params
    .map((p) => `<param>${enc(p)}</param>`)
    .join('')}</params></methodCall>`;
}
