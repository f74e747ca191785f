// Servers that misbehave, for the NFS driver's time-limit tests.
import { execa, type ResultPromise } from 'execa';

/**
 * A listener whose accept queue is full and never drained: the kernel drops
 * further SYNs, as a dead or firewalled server does.
 */
export async function droppingServer(host: string, port = 2049): Promise<() => Promise<void>> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    `s.bind((${JSON.stringify(host)}, ${port})); s.listen(0)`,
    'fill = []',
    'for i in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect((sys.argv[1], int(sys.argv[2])))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print("ready", flush=True)',
    'time.sleep(120)',
  ].join('\n');
  const p: ResultPromise = execa('python3', ['-c', script, host, String(port)], { reject: false });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => (String(d).includes('ready') ? resolve() : undefined));
    void p.then((r) => reject(new Error(`dropping server exited: ${String(r.stderr)}`)));
  });
  return async () => {
    p.kill('SIGKILL');
    await p;
  };
}
