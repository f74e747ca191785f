// A XenAPI XML-RPC endpoint on 127.0.0.1 (random port) that a driver reaches
// through SM_XAPI_URL while the runner waits for it. Results follow XenAPI:
// {Status: "Success", Value} or {Status: "Failure", ErrorDescription: [code, ...]}.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeResponse, parseMethodCall, type XmlRpcValue } from '../../sdk/protocol/xmlrpc.js';
import { newRef, type StateDb } from '../db/state-db.js';
import { XenApiError } from '../errors.js';
import { XenApiMethods } from './methods.js';

export interface EndpointCall {
  method: string;
  status: 'Success' | 'Failure';
  error?: string[];
}

export class XenApiEndpoint {
  private readonly sessions = new Set<string>();
  private readonly methods: XenApiMethods;
  /** Every call served, in order (the conformance suite inspects these). */
  readonly calls: EndpointCall[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    db: StateDb,
  ) {
    this.methods = new XenApiMethods(db, this.sessions);
  }

  static async start(db: StateDb): Promise<XenApiEndpoint> {
    db.localHost(); // xapi always has its host record; drivers look it up
    let self: XenApiEndpoint | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = self!.handle(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    self = new XenApiEndpoint(server, `http://127.0.0.1:${port}/`, db);
    return self;
  }

  /** A fresh session ref the endpoint accepts (what xapi hands each SM call). */
  newSession(): string {
    const ref = newRef();
    this.sessions.add(ref);
    return ref;
  }

  private handle(xml: string): string {
    let method = '(unparsed)';
    let reply: XmlRpcValue;
    try {
      const call = parseMethodCall(xml);
      method = call.methodName;
      reply = { Status: 'Success', Value: this.methods.call(call.methodName, call.params) };
      this.calls.push({ method, status: 'Success' });
    } catch (e) {
      const desc =
        e instanceof XenApiError
          ? [e.code, ...e.params]
          : method === '(unparsed)'
            ? ['XMLRPC_UNMARSHAL_FAILURE', String((e as Error).message)]
            : ['INTERNAL_ERROR', String((e as Error).message)];
      reply = { Status: 'Failure', ErrorDescription: desc };
      this.calls.push({ method, status: 'Failure', error: desc });
    }
    return encodeResponse(reply);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
