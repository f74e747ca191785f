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

/**
 * A listener on host:port that answers ONC RPC NULL calls (procedure 0, any
 * program) and nothing else: enough for the driver's reachability check to pass,
 * so the path behind it (mount.nfs) is reached. `answer: false` accepts and never
 * replies: a hung server whose kernel still takes connections.
 */
export async function rpcNullServer(host: string, port = 2049, answer = true): Promise<() => Promise<void>> {
  const { createServer } = await import('node:net');
  const srv = createServer((sock) => {
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0) & 0x7fffffff;
        if (buf.length < 4 + len) return;
        const rec = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        if (!answer || rec.length < 24 || rec.readUInt32BE(20) !== 0) continue;
        const reply = Buffer.alloc(28);
        reply.writeUInt32BE(0x80000000 + 24, 0);
        reply.writeUInt32BE(rec.readUInt32BE(0), 4); // xid
        reply.writeUInt32BE(1, 8); // REPLY; MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS: zeros
        sock.write(reply);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  return () => new Promise<void>((r) => srv.close(() => r()));
}
