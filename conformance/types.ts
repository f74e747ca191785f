// What a scenario produces and what the reports are built from.

/** One driver call as the suite saw it: the exact request and what came back. */
export interface CallRecord {
  command: string;
  /** The XML-RPC methodCall sent as argv[1]. For a failed call it is rebuilt with the session ref elided. */
  requestXml: string;
  ok: boolean;
  /** The decoded result of a successful call. */
  response?: unknown;
  /** The XML-RPC fault of a failed call. */
  fault?: { faultCode: number; faultName: string; faultString: string };
  /** Any other failure (protocol error, toolstack refusal). */
  error?: string;
  stderr?: string;
  durationMs: number;
}

/** Why a scenario failed: what was expected, what happened, and the calls that show it. */
export interface Evidence {
  expected: string;
  actual: string;
  calls: CallRecord[];
}

export type Status = 'pass' | 'fail' | 'skip';

export interface ScenarioResult {
  /** Scenario id plus the format it ran with, e.g. `snapshot[vhd]`. */
  id: string;
  title: string;
  format?: string;
  status: Status;
  durationMs: number;
  /** Skip reason, or the failure message. */
  reason?: string;
  evidence?: Evidence;
}

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
}

export interface SuiteReport {
  driver: string;
  type: string;
  driverInfo?: unknown;
  startedAt: string;
  durationMs: number;
  results: ScenarioResult[];
  summary: Summary;
  /** Where the time went: the driver calls made (wall time of each plug-in run), by command. */
  calls?: CallStats;
}

export interface CallStats {
  count: number;
  totalMs: number;
  byCommand: Record<string, { count: number; totalMs: number }>;
}

export function callStats(calls: readonly Pick<CallRecord, 'command' | 'durationMs'>[]): CallStats {
  const byCommand: CallStats['byCommand'] = {};
  let totalMs = 0;
  for (const c of calls) {
    const b = (byCommand[c.command] ??= { count: 0, totalMs: 0 });
    b.count++;
    b.totalMs += c.durationMs;
    totalMs += c.durationMs;
  }
  return { count: calls.length, totalMs, byCommand };
}

export function summarize(results: readonly ScenarioResult[]): Summary {
  return {
    passed: results.filter((r) => r.status === 'pass').length,
    failed: results.filter((r) => r.status === 'fail').length,
    skipped: results.filter((r) => r.status === 'skip').length,
  };
}

/** A check that did not hold; carries the evidence into the report. */
export class ScenarioFailure extends Error {
  override name = 'ScenarioFailure';
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly calls: CallRecord[] = [],
  ) {
    super(message);
  }
}

/** The scenario cannot run against this driver (a capability or format it does not declare). */
export class ScenarioSkip extends Error {
  override name = 'ScenarioSkip';
}
