// Errors the toolstack raises, shaped like XenAPI errors (a code plus string
// parameters) because that is what xe prints and what scripts match on.

/** A XenAPI-style failure: `code` is the XenAPI error name, `params` its parameters. */
export class XenApiError extends Error {
  override name = 'XenApiError';
  constructor(
    readonly code: string,
    readonly params: string[] = [],
    message?: string,
  ) {
    super(message ?? (params.length > 0 ? `${code}: ${params.join(', ')}` : code));
  }
}

/** Bad command-line input: the value is named, and what was allowed. Exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A plug-in answered with an XML-RPC fault. `code` is what xapi turns the fault
 * into (sm_exec.ml): 16/24/38/39/144 get their own XenAPI names, anything else
 * becomes SR_BACKEND_FAILURE_<faultCode> with params ["", faultString, stderr].
 */
export class DriverFaultError extends XenApiError {
  override name = 'DriverFaultError';
  constructor(
    code: string,
    params: string[],
    readonly faultCode: number,
    readonly faultName: string,
    readonly faultString: string,
    readonly stderr: string,
    readonly command: string,
    readonly plugin: string,
  ) {
    super(
      code,
      params,
      `${plugin} ${command} failed: fault ${faultCode} (${faultName}): ${faultString}` +
        (stderr.trim() ? `\nstderr: ${stderr.trim()}` : ''),
    );
  }
}

/**
 * The plug-in broke the process contract (non-zero exit, killed, timed out,
 * unparseable stdout). xapi reports these as SR_BACKEND_FAILURE with
 * [reason, stdout, stderr].
 */
export class DriverProtocolError extends XenApiError {
  override name = 'DriverProtocolError';
  constructor(
    readonly reason: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly command: string,
    readonly plugin: string,
  ) {
    super(
      'SR_BACKEND_FAILURE',
      [reason, stdout, stderr],
      `${plugin} ${command} failed: ${reason}` +
        (stdout.trim() ? `\nstdout: ${stdout.trim()}` : '') +
        (stderr.trim() ? `\nstderr: ${stderr.trim()}` : ''),
    );
  }
}
