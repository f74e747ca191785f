// The process contract's first step (spec §1.2, sm's SRCommand.parse): exactly
// one argv argument holding a methodCall whose params are one struct with a
// device_config struct. Runs on every start, before the static
// sr_get_driver_info answer, so it imports only the codec: a problem comes back
// as a string (the BadRequest detail), and the caller builds the fault.
import { isStruct, parseMethodCall, type MethodCall } from './xmlrpc.js';

/** `args` is argv without the node binary and script: what xapi passed. A string result is why it is a BadRequest. */
export function checkMethodCall(args: readonly string[]): MethodCall | string {
  if (args.length !== 1) return `expected exactly one argument (an XML-RPC methodCall), got ${args.length}`;
  let call: MethodCall;
  try {
    call = parseMethodCall(args[0]!);
  } catch (e) {
    return (e as Error).message;
  }
  if (call.params.length !== 1) return `expected exactly one param (a struct), got ${call.params.length}`;
  const p = call.params[0];
  if (!isStruct(p)) return 'the param must be a struct';
  if (!('device_config' in p)) return "missing member 'device_config'";
  if (!isStruct(p['device_config'])) return "member 'device_config' must be a struct";
  if ('command' in p && p['command'] !== call.methodName)
    return `member 'command' is ${JSON.stringify(p['command'])} but the method is ${call.methodName}`;
  return call;
}
