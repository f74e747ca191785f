// Records every driver call the toolstack makes (request XML, result or fault),
// so a failed check can show the exact exchange that broke it.
import { encodeMethodCallXapiStyle } from '../src/sdk/protocol/xmlrpc.js';
import { buildRequest, DriverFaultError, DriverProtocolError, type Toolstack } from '../src/toolstack/index.js';
import type { CallRecord } from './types.js';

export class CallRecorder {
  readonly calls: CallRecord[] = [];

  /** Wraps `ts.call`, which every toolstack operation goes through. */
  static attach(ts: Toolstack): CallRecorder {
    const rec = new CallRecorder();
    const original = ts.call.bind(ts);
    ts.call = async (plugin, call) => {
      const started = Date.now();
      try {
        const r = await original(plugin, call);
        rec.calls.push({ command: call.command, requestXml: r.requestXml, ok: true, response: r.value, stderr: r.stderr, durationMs: Date.now() - started });
        return r;
      } catch (e) {
        // runPlugin does not hand back the request of a failed call; rebuild it (same
        // members and order) with a placeholder for the per-call session ref.
        const requestXml = encodeMethodCallXapiStyle(call.command, [
          buildRequest({ ...call, hostRef: ts.db.localHost().ref, sessionRef: call.sessionRef ?? 'OpaqueRef:<per-call session>' }),
        ]);
        const record: CallRecord = { command: call.command, requestXml, ok: false, durationMs: Date.now() - started };
        if (e instanceof DriverFaultError) {
          record.fault = { faultCode: e.faultCode, faultName: e.faultName, faultString: e.faultString };
          record.stderr = e.stderr;
        } else if (e instanceof DriverProtocolError) {
          record.error = e.message;
          record.stderr = e.stderr;
        } else {
          record.error = (e as Error).message;
        }
        rec.calls.push(record);
        throw e;
      }
    };
    return rec;
  }

  /** Index to pass to `since` later. */
  mark(): number {
    return this.calls.length;
  }

  since(mark: number): CallRecord[] {
    return this.calls.slice(mark);
  }

  last(n = 1): CallRecord[] {
    return this.calls.slice(-n);
  }
}
