// csi-sanity's Resources wrapper: everything a scenario creates is registered
// with the way to remove it, and removed in reverse order (LIFO) afterwards.
// A failed removal is reported; the remaining ones still run.

export interface CleanupFailure {
  what: string;
  error: Error;
}

export class Resources {
  private readonly stack: { what: string; undo: () => Promise<void> }[] = [];

  add(what: string, undo: () => Promise<void>): void {
    this.stack.push({ what, undo });
  }

  get size(): number {
    return this.stack.length;
  }

  /** Runs every undo, newest first; returns those that failed. */
  async cleanup(): Promise<CleanupFailure[]> {
    const failures: CleanupFailure[] = [];
    while (this.stack.length > 0) {
      const r = this.stack.pop()!;
      try {
        await r.undo();
      } catch (e) {
        failures.push({ what: r.what, error: e as Error });
      }
    }
    return failures;
  }
}
