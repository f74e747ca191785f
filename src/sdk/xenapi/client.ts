// XenAPI client for driver callbacks (spec §1.8): XML-RPC over HTTP POST to
// xapi, over its Unix socket by default (env.xapiUrl()). XenAPI wraps every
// result as {Status: 'Success', Value} or {Status: 'Failure', ErrorDescription}.
import { request as httpRequest, type RequestOptions } from 'node:http';
import { encodeMethodCall, isStruct, parseMethodResponse, type XmlRpcValue } from '../protocol/xmlrpc.js';

/** xapi answered the call with Status=Failure. Maps to APIFailure (153). */
export class XenAPIFailure extends Error {
  override name = 'XenAPIFailure';
  readonly xenapi = 'failure' as const;
  constructor(
    readonly method: string,
    readonly description: string[],
  ) {
    super(`${method}: ${description.length ? description.join(', ') : 'failure without description'}`);
  }
}

/** The call did not get a XenAPI answer (connection, HTTP status, malformed reply). Maps to APIProtocolError (154). */
export class XenAPIProtocolError extends Error {
  override name = 'XenAPIProtocolError';
  readonly xenapi = 'protocol' as const;
  constructor(
    readonly method: string,
    reason: string,
  ) {
    super(`${method}: ${reason}`);
  }
}

export interface XenAPIEndpoint {
  /** `http://host:port/path` or `unix:/path/to/socket`. */
  url: string;
  /** Task this call is part of: sent as the Subtask-of header, as sm does. */
  subtaskOf?: string;
  timeoutMs?: number;
}

function target(url: string): RequestOptions {
  if (url.startsWith('unix:')) return { socketPath: url.slice('unix:'.length), path: '/' };
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new XenAPIProtocolError('connect', `unsupported XenAPI URL ${url} (use http://host:port/ or unix:/path)`);
  return { host: u.hostname, port: u.port || 80, path: `${u.pathname || '/'}${u.search}` };
}

/**
 * A kept-alive connection the server closed while idle fails the next request
 * sent on it before any answer ("socket hang up" / ECONNRESET on a reused
 * socket): the server never read that request, so it is sent once more on a
 * fresh connection (Node's documented pattern, `req.reusedSocket`). Seen on a
 * loaded host, where the client's event loop notices the server's close late.
 */
class StaleConnection extends Error {}

async function post(endpoint: XenAPIEndpoint, method: string, body: string): Promise<string> {
  try {
    return await postOnce(endpoint, method, body);
  } catch (e) {
    if (!(e instanceof StaleConnection)) throw e;
    return postOnce(endpoint, method, body, true);
  }
}

function postOnce(endpoint: XenAPIEndpoint, method: string, body: string, fresh = false): Promise<string> {
  return new Promise((resolve, reject) => {
    let opts: RequestOptions;
    try {
      opts = target(endpoint.url);
    } catch (e) {
      reject(e);
      return;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': 'text/xml',
      'Content-Length': Buffer.byteLength(body),
      'User-Agent': 'smapi-ts',
    };
    if (endpoint.subtaskOf) headers['Subtask-of'] = endpoint.subtaskOf;
    let answered = false;
    const req = httpRequest({ ...opts, method: 'POST', headers, timeout: endpoint.timeoutMs ?? 600_000, ...(fresh ? { agent: false } : {}) }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new XenAPIProtocolError(method, `HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', (e) => reject(new XenAPIProtocolError(method, e.message)));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!fresh && !answered && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) reject(new StaleConnection(e.message));
      else reject(new XenAPIProtocolError(method, `${endpoint.url}: ${e.message}`));
    });
    req.end(body);
  });
}

/** One XenAPI call; returns `Value` of a Success, throws XenAPIFailure / XenAPIProtocolError. */
export async function xenapiCall(endpoint: XenAPIEndpoint, method: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
  const text = await post(endpoint, method, encodeMethodCall(method, params));
  let response;
  try {
    response = parseMethodResponse(text);
  } catch (e) {
    throw new XenAPIProtocolError(method, `malformed response: ${(e as Error).message}`);
  }
  if (response.kind === 'fault')
    throw new XenAPIProtocolError(method, `XML-RPC fault ${response.fault.faultCode}: ${response.fault.faultString}`);
  const v = response.value;
  if (!isStruct(v) || typeof v['Status'] !== 'string') throw new XenAPIProtocolError(method, 'response is not a XenAPI {Status, ...} struct');
  if (v['Status'] === 'Success') return v['Value'] ?? '';
  const desc = v['ErrorDescription'];
  throw new XenAPIFailure(method, Array.isArray(desc) ? desc.map((d) => String(d)) : []);
}
