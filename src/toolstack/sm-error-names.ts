// Fault code -> XE_SR_ERRORCODES name (from the SDK's full table), and the
// XenAPI error xapi raises for a driver fault.
import { errorByCode } from '../sdk/errors/index.js';

/** The XE_SR_ERRORCODES name of a fault code, or `code <n>` when the table lacks it. */
export function smErrorName(code: number): string {
  return errorByCode(code)?.name ?? `code ${code}`;
}

/**
 * What xapi raises for a driver fault (XA:ocaml/xapi/sm_exec.ml): five codes have
 * their own XenAPI errors, every other code is SR_BACKEND_FAILURE_<code> with
 * params ["", faultString, stderr].
 */
export function xapiErrorForFault(
  faultCode: number,
  faultString: string,
  stderr: string,
  refs: { srRef?: string; vdiRef?: string } = {},
): { code: string; params: string[] } {
  switch (faultCode) {
    case 38:
      return { code: 'UNIMPLEMENTED_IN_SM_BACKEND', params: [faultString] };
    case 39:
      return { code: 'SR_NOT_EMPTY', params: [] };
    case 24:
      return { code: 'VDI_IN_USE', params: [refs.vdiRef ?? '', faultString] };
    case 16:
      return { code: 'SR_DEVICE_IN_USE', params: [] };
    case 144:
      return { code: 'VDI_MISSING', params: [refs.srRef ?? '', refs.vdiRef ?? ''] };
    default:
      return { code: `SR_BACKEND_FAILURE_${faultCode}`, params: ['', faultString, stderr] };
  }
}
