// Guests run in their own process group (user-mode-linux is several host
// processes, one per guest address space), so killing the emulator's pid
// alone would leave the rest running. execa's own clean-up skips detached
// children, so this module kills every live guest group when this process
// exits or is told to stop (SIGINT, SIGTERM, SIGHUP), then lets the signal
// do what it would have done.
const live = new Set<number>();
let installed = false;

/** SIGKILL to the whole group led by `pid` (a no-op once it is gone). */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function killAll(): void {
  for (const pid of live) killGroup(pid);
  live.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      // Re-raised with our listener gone: the default action (or the other listeners) as before.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** Track the group led by `pid` until the returned function is called (the guest ended). */
export function trackGroup(pid: number): () => void {
  install();
  live.add(pid);
  return () => {
    live.delete(pid);
  };
}
