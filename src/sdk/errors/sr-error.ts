// One error type for everything a driver reports to the toolstack: the
// XE_SR_ERRORCODES name, its code, and an optional detail that sm renders as
// " [opterr=<detail>]" after the table's description.
import { ERROR_CODES, type ErrorCodeEntry } from './codes.js';

const BY_NAME = new Map<string, ErrorCodeEntry>(ERROR_CODES.map((e) => [e.name, e]));
const BY_CODE = new Map<number, ErrorCodeEntry>(ERROR_CODES.map((e) => [e.code, e]));

export function errorByName(name: string): ErrorCodeEntry | undefined {
  return BY_NAME.get(name);
}

export function errorByCode(code: number): ErrorCodeEntry | undefined {
  return BY_CODE.get(code);
}

export class SRError extends Error {
  override name = 'SRError';
  /** The table key, e.g. 'VDICreate'; for an unknown key, the key that was asked for. */
  readonly key: string;
  readonly code: number;
  readonly description: string;
  readonly detail: string | undefined;

  /**
   * `new SRError('VDICreate', 'qemu-img failed')`. An unknown key gives code 1,
   * "Error reporting error, unknown key <key>", as sm's XenError does.
   */
  constructor(key: string, detail?: string, options?: { cause?: unknown }) {
    const entry = BY_NAME.get(key);
    const code = entry ? entry.code : 1;
    const description = entry ? entry.description : `Error reporting error, unknown key ${key}`;
    const text = entry && detail !== undefined ? `${description} [opterr=${detail}]` : description;
    super(text, options);
    this.key = key;
    this.code = code;
    this.description = description;
    this.detail = entry ? detail : undefined;
  }

  /** The XML-RPC faultString: description plus " [opterr=...]" when there is a detail. */
  get faultString(): string {
    return this.message;
  }

  toFault(): { faultCode: number; faultString: string } {
    return { faultCode: this.code, faultString: this.message };
  }
}

/** A fault whose code is not in the table (e.g. 1200 with a raw message), like Python's Fault(1200, str(e)). */
export class RawFault extends Error {
  override name = 'RawFault';
  constructor(
    readonly code: number,
    text: string,
  ) {
    super(text);
  }
  toFault(): { faultCode: number; faultString: string } {
    return { faultCode: this.code, faultString: this.message };
  }
}

export function isSRError(e: unknown): e is SRError {
  return e instanceof SRError;
}
