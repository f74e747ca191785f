// Issue 5 of the nfs driver: a dead or hung NFS server gives a timely error and
// never blocks calls for other SRs. Run in the test host (kernel NFS server and
// client), driven through bin/smctl as a toolstack would, in one boot.
//
// How the bad server is made (this machine has no iptables/nft, and the guest
// has no netfilter modules):
// * knfsd listens on 127.0.0.1 only (`rpc.nfsd -H 127.0.0.1`), so port 2049 of
//   127.0.0.2 is free for a small TCP relay (python) to 127.0.0.1:2049. The SR on
//   127.0.0.2 reaches the real server through it; rpcbind and mountd listen on
//   every address, so NFSv3's MOUNT step talks to the real daemons.
// * HUNG server: the relay is SIGSTOPped. Connections stay established and new
//   ones are still accepted by its kernel socket, but nothing is answered:
//   exactly a server whose NFS service hangs while its host is up.
// * DEAD server: the relay is killed and 127.0.0.2:2049 is held by a listener
//   whose accept queue is full and never drained, so the kernel drops every SYN,
//   as for a host that is powered off or firewalled.
// The other SRs (an NFS SR on 127.0.0.1, served by the same knfsd, and a local
// file SR) must keep working meanwhile.
//
// One toolstack database per SR: smctl holds one SQLite write transaction across
// each driver call (src/toolstack/db/state-db.ts), so two smctl commands on the
// same database never overlap whatever the driver does. What is tested here is
// the driver: its locks (SM_LOCK_DIR, shared by every database below), its mounts
// (SM_SR_MOUNT_ROOT, shared) and its time limits.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runStepsInTestHost, type StepsRun } from '../../src/testhost/index.js';
import { assertBuilt, ROOT } from '../file-sr/helpers.js';

/**
 * Bound for a call against the dead or hung server. The driver itself gives up
 * after 5 s without a TCP connection, or 5 + 10 s without an answer to an NFS
 * NULL call, and the error text says which (asserted below). The rest of the
 * bound is starting smctl and the driver (node) in a one-CPU user-mode-linux
 * guest while four other calls run beside it on a shared, often loaded machine:
 * at load 15 these calls took 55-80 s. What the bound rules out is waiting for
 * the server: the call on the hung SR below was still waiting after 120 s, and a
 * soft mount with sm's timeo=200,retrans=4 gives up only after about 300 s.
 */
const DEAD_CALL_BOUND_S = 150;
/**
 * Calls on the healthy SRs (55-80 s each at load 15, same reasons). That they did
 * not wait for the bad server is asserted by order, not by this bound: they all
 * finished while the call on the hung SR was still waiting.
 */
const HEALTHY_CALL_BOUND_S = 240;

const W = '/run/deadnfs';

// Shared by every step (steps do not share shell variables).
const PRELUDE = String.raw`
W=${W}
export SM_LOCK_DIR=$W/lock SM_RUN_DIR=$W/run SM_SR_MOUNT_ROOT=$W/mnt SM_LOG_FILE=$W/SMlog
unset SM_DIR SM_FIST
mkdir -p $W/res
# timed NAME DB ARGS...: one smctl call on database $W/DB.db; records rc, start, end, stdout, stderr.
timed() {
  local n=$1 db=$2 t0 rc=0; shift 2
  t0=$EPOCHREALTIME
  SMCTL_DB=$W/$db.db node bin/smctl "$@" > $W/res/$n.out 2> $W/res/$n.err || rc=$?
  echo "$rc $t0 $EPOCHREALTIME" > $W/res/$n.rc
  return 0
}
# report NAME...: one JSON line per recorded call, for the host to assert on.
report() {
  /usr/bin/python3 - "$W/res" "$@" <<'PY'
import json, sys
d = sys.argv[1]
for n in sys.argv[2:]:
    rc, t0, t1 = open(f"{d}/{n}.rc").read().split()
    print("RESULT " + json.dumps({"name": n, "rc": int(rc), "start": float(t0), "end": float(t1),
        "stdout": open(f"{d}/{n}.out").read(), "stderr": open(f"{d}/{n}.err").read()}))
PY
}
# ok NAME DB ARGS...: a call that must succeed; prints its stdout.
ok() {
  timed "$@"
  [ "$(cut -d' ' -f1 $W/res/$1.rc)" = 0 ] || { echo "smctl call $1 ($*) failed:" >&2; cat $W/res/$1.err >&2; return 1; }
  cat $W/res/$1.out
}
mounts() { grep " $W/mnt" /proc/mounts || true; }
relay_start() {
  setsid /usr/bin/python3 $W/relay.py 127.0.0.2 2049 127.0.0.1 2049 > $W/relay.log 2>&1 < /dev/null &
  echo $! > $W/relay.pid
  for _ in $(seq 100); do grep -q ready $W/relay.log && return 0; sleep 0.1; done
  cat $W/relay.log >&2; return 1
}
`;

const RELAY_PY = String.raw`
import socket, sys, threading
lh, lp, uh, up = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((lh, lp)); s.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for x in (a, b):
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try: u = socket.create_connection((uh, up))
    except OSError: c.close(); continue
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
`;

// The listener of test/nfs/helpers.ts droppingServer: its one-slot accept queue is filled and never drained.
const DROPPER_PY = String.raw`
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(0)
fill = []
for i in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect((sys.argv[1], int(sys.argv[2])))
    except BlockingIOError: pass
    fill.append(c)
print("ready", flush=True)
time.sleep(3600)
`;

const DEAD_DC = ['type=nfs', 'device-config:server=127.0.0.2', 'device-config:serverpath=/srv/dead'];

const steps = [
  {
    name: 'setup',
    script: String.raw`
th_nfs_server_start /srv/live /srv/dead
# knfsd on 127.0.0.1 only: 127.0.0.2:2049 is the relay's.
rpc.nfsd 0
rpc.nfsd -H 127.0.0.1 4
cat > $W/relay.py <<'PY'
${RELAY_PY}
PY
cat > $W/dropper.py <<'PY'
${DROPPER_PY}
PY
relay_start
`,
  },
  {
    name: 'create',
    // The dead-to-be SR (database a) and the healthy ones (b: NFS on 127.0.0.1, f: file SR), in parallel.
    script: String.raw`
(
  D=$(ok mkD a sr-create name-label=dead shared=true ${DEAD_DC.join(' ')})
  echo $D > $W/D
  V=$(ok mkV a vdi-create sr-uuid=$D virtual-size=8MiB name-label=in-use sm-config:image-format=raw)
  echo $V > $W/V
  # The VDI in use: data written through the client, compared after the server came back.
  head -c 1048576 /dev/urandom > $W/data
  dd if=$W/data of=$W/mnt/$D/$V.raw bs=64k conv=notrunc,fsync status=none
) > $W/res/chainA.log 2>&1 &
a=$!
(
  L=$(ok mkL b sr-create name-label=live shared=true type=nfs device-config:server=127.0.0.1 device-config:serverpath=/srv/live)
  echo $L > $W/L
) > $W/res/chainB.log 2>&1 &
b=$!
(
  F=$(ok mkF f sr-create name-label=local type=file device-config:location=$W/filesr)
  echo $F > $W/F
) > $W/res/chainF.log 2>&1 &
f=$!
rc=0
wait $a || rc=1; wait $b || rc=1; wait $f || rc=1
cat $W/res/chain*.log
echo "D=$(cat $W/D 2>/dev/null) L=$(cat $W/L 2>/dev/null) F=$(cat $W/F 2>/dev/null) V=$(cat $W/V 2>/dev/null)"
echo "MOUNTS"; mounts
exit $rc
`,
  },
  {
    name: 'hung',
    script: String.raw`
D=$(cat $W/D) L=$(cat $W/L) F=$(cat $W/F)
kill -STOP $(cat $W/relay.pid)
# A call on the SR in use: it waits on the hung server (soft mount: up to ~300 s).
timed hungScanD a sr-scan uuid=$D &
stuck=$!
sleep 3
# Attach paths against the hung server, each from its own toolstack database.
timed hungProbe c1 sr-probe ${DEAD_DC.join(' ')} &
p1=$!
timed hungCreate c2 sr-create name-label=x shared=true ${DEAD_DC.join(' ')} &
p2=$!
# Meanwhile the other SRs.
( timed hungVdiL b vdi-create sr-uuid=$L virtual-size=4MiB name-label=l1; timed hungScanL b sr-scan uuid=$L ) &
p3=$!
( timed hungVdiF f vdi-create sr-uuid=$F virtual-size=4MiB name-label=f1; timed hungScanF f sr-scan uuid=$F ) &
p4=$!
wait $p1 $p2 $p3 $p4
if kill -0 $stuck 2>/dev/null; then echo "STUCK_AFTER_OTHERS=1"; else echo "STUCK_AFTER_OTHERS=0"; fi
echo "RESUMED_AT=$EPOCHREALTIME"
kill -CONT $(cat $W/relay.pid)
wait $stuck
report hungScanD hungProbe hungCreate hungVdiL hungScanL hungVdiF hungScanF
`,
  },
  {
    name: 'dead',
    script: String.raw`
D=$(cat $W/D) L=$(cat $W/L) F=$(cat $W/F)
P=$(SMCTL_DB=$W/a.db node bin/smctl pbd-list sr-uuid=$D --minimal)
echo $P > $W/P
# Detached while the server still answers; then the server dies.
ok unplugD a pbd-unplug uuid=$P > /dev/null
kill -9 $(cat $W/relay.pid)
setsid /usr/bin/python3 $W/dropper.py 127.0.0.2 2049 > $W/dropper.log 2>&1 < /dev/null &
echo $! > $W/dropper.pid
for _ in $(seq 100); do grep -q ready $W/dropper.log && break; sleep 0.1; done
grep -q ready $W/dropper.log
timed deadPlug a pbd-plug uuid=$P &
p0=$!
timed deadProbe c1 sr-probe ${DEAD_DC.join(' ')} &
p1=$!
timed deadCreate c2 sr-create name-label=x shared=true ${DEAD_DC.join(' ')} &
p2=$!
( timed deadVdiL b vdi-create sr-uuid=$L virtual-size=4MiB name-label=l2; timed deadScanL b sr-scan uuid=$L ) &
p3=$!
( timed deadVdiF f vdi-create sr-uuid=$F virtual-size=4MiB name-label=f2; timed deadScanF f sr-scan uuid=$F ) &
p4=$!
wait $p0 $p1 $p2 $p3 $p4
report unplugD deadPlug deadProbe deadCreate deadVdiL deadScanL deadVdiF deadScanF
echo "MOUNTS"; mounts
echo "SCRATCH $(ls -A $W/mnt | grep '^\.nfs-' || true)"
`,
  },
  {
    name: 'revived',
    script: String.raw`
D=$(cat $W/D) V=$(cat $W/V) P=$(cat $W/P)
kill -9 $(cat $W/dropper.pid)
relay_start
# pbd-plug ends with the SR's scan (the toolstack's post-attach scan; its failure would be a warning on stderr).
ok plugD a pbd-plug uuid=$P > /dev/null
cmp <(head -c 1048576 $W/mnt/$D/$V.raw) $W/data && echo "DATA_INTACT=1"
ok vdiD a vdi-create sr-uuid=$D virtual-size=4MiB name-label=after > /dev/null
report plugD vdiD
echo "VDIS $(SMCTL_DB=$W/a.db node bin/smctl vdi-list sr-uuid=$D --minimal)"
`,
  },
  {
    name: 'cleanup',
    // Every SR detached: nothing of the driver stays mounted, no scratch mount point is left.
    script: String.raw`
unplug() {
  local pbd
  pbd=$(SMCTL_DB=$W/$1.db node bin/smctl pbd-list sr-uuid=$(cat $W/$2) --minimal)
  ok unplug$1 $1 pbd-unplug uuid=$pbd > /dev/null
}
# One database each: the three run side by side.
unplug a D & a=$!
unplug b L & b=$!
unplug f F & f=$!
wait $a; wait $b; wait $f
echo "MOUNTS $(mounts | tr '\n' ' ')"
echo "LEFT $(ls -A $W/mnt 2>/dev/null | tr '\n' ' ')"
`,
  },
].map((s) => ({ name: s.name, script: PRELUDE + s.script }));

interface Call {
  name: string;
  rc: number;
  start: number;
  end: number;
  stdout: string;
  stderr: string;
}

function calls(run: StepsRun, step: string): Map<string, Call> {
  const m = new Map<string, Call>();
  for (const l of run.step(step).stdout.split('\n')) if (l.startsWith('RESULT ')) {
    const c = JSON.parse(l.slice(7)) as Call;
    m.set(c.name, c);
  }
  return m;
}

function call(run: StepsRun, step: string, name: string): Call {
  const c = calls(run, step).get(name);
  if (!c) throw new Error(`step ${step} recorded no call ${name}:\n${run.step(step).stdout}\n${run.step(step).stderr}`);
  return c;
}

const secs = (c: Call) => c.end - c.start;
const why = (c: Call) => `${c.name}: rc ${c.rc} after ${secs(c).toFixed(1)} s\n${c.stderr}${c.stdout}`;

function passed(run: StepsRun, name: string): string {
  const s = run.step(name);
  expect(s.exitCode, `step ${name} failed:\n${s.stdout}\n${s.stderr}`).toBe(0);
  return s.stdout;
}

/** A call against the bad server: NFSTarget (108) naming it, within the bound. */
function failedFast(c: Call): void {
  expect(c.rc, why(c)).not.toBe(0);
  expect(c.stderr, why(c)).toContain('SR_BACKEND_FAILURE_108');
  expect(c.stderr, why(c)).toContain('NFS server 127.0.0.2');
  expect(secs(c), why(c)).toBeLessThan(DEAD_CALL_BOUND_S);
}

function succeeded(c: Call): void {
  expect(c.rc, why(c)).toBe(0);
  expect(secs(c), why(c)).toBeLessThan(HEALTHY_CALL_BOUND_S);
}

describe('nfs: a dead or hung server (test host)', () => {
  let run: StepsRun;

  beforeAll(async () => {
    assertBuilt();
    expect(existsSync(join(ROOT, 'dist/drivers/nfs/handlers.js'))).toBe(true);
    run = await runStepsInTestHost(steps, { cwd: ROOT, stepTimeoutMs: 400_000, config: { timeoutMs: 840_000 } });
  }, 900_000);

  it('three SRs attached: the one on 127.0.0.2 goes through the relay, soft-mounted; the live one on 127.0.0.1; a local file SR', () => {
    const out = passed(run, 'create');
    const ids = /D=(\S+) L=(\S+) F=(\S+) V=(\S+)/.exec(out);
    expect(ids, out).not.toBeNull();
    const [, d, l] = ids!;
    expect(out).toMatch(new RegExp(`^127\\.0\\.0\\.2:/srv/dead/${d} ${W}/mnt/${d} nfs .*\\bsoft\\b.*\\btimeo=200\\b.*\\bretrans=4\\b`, 'm'));
    expect(out).toMatch(new RegExp(`^127\\.0\\.0\\.1:/srv/live/${l} ${W}/mnt/${l} nfs `, 'm'));
  });

  it('HUNG server: sr-probe and sr-create against it fail with NFSTarget naming it, within the bound', () => {
    passed(run, 'hung');
    for (const n of ['hungProbe', 'hungCreate']) {
      const c = call(run, 'hung', n);
      failedFast(c);
      expect(c.stderr, why(c)).toContain('does not answer NFS calls: no reply to a NULL call within 10 s');
      // Failed while the server was still hung (it is resumed only after every other call ended).
      expect(c.end).toBeLessThan(Number(/RESUMED_AT=([\d.]+)/.exec(run.step('hung').stdout)?.[1]));
    }
  });

  it('HUNG server: a call on its SR waits, and meanwhile vdi-create and sr-scan on the other NFS SR and the file SR complete; it finishes once the server answers again', () => {
    const out = passed(run, 'hung');
    const stuck = call(run, 'hung', 'hungScanD');
    const others = ['hungVdiL', 'hungScanL', 'hungVdiF', 'hungScanF'].map((n) => call(run, 'hung', n));
    for (const c of others) {
      succeeded(c);
      // Started while the call on the hung SR was already waiting...
      expect(c.start, why(c)).toBeGreaterThan(stuck.start);
    }
    // ... and all done while it was still waiting: not serialized behind it.
    expect(out).toContain('STUCK_AFTER_OTHERS=1');
    const resumedAt = Number(/RESUMED_AT=([\d.]+)/.exec(out)?.[1]);
    for (const c of others) expect(c.end, why(c)).toBeLessThan(resumedAt);
    expect(stuck.end).toBeGreaterThan(resumedAt);
    expect(stuck.rc, why(stuck)).toBe(0);
  });

  it('DEAD server: pbd-plug of its SR, sr-probe and sr-create fail with NFSTarget naming it within the bound, while the other SRs work', () => {
    passed(run, 'dead');
    expect(call(run, 'dead', 'unplugD').rc).toBe(0);
    for (const n of ['deadPlug', 'deadProbe', 'deadCreate']) {
      const c = call(run, 'dead', n);
      failedFast(c);
      expect(c.stderr, why(c)).toContain('does not answer on TCP port 2049: no answer within 5 s');
    }
    for (const n of ['deadVdiL', 'deadScanL', 'deadVdiF', 'deadScanF']) succeeded(call(run, 'dead', n));
  });

  it('DEAD server: the failed plug, probe and create leave no mount and no scratch mount point of 127.0.0.2', () => {
    const out = passed(run, 'dead');
    const mounts = out.slice(out.indexOf('MOUNTS'));
    expect(mounts).not.toContain('127.0.0.2:');
    expect(mounts).toContain('127.0.0.1:/srv/live/');
    expect(out).toMatch(/^SCRATCH $/m);
  });

  it('server back: the SR plugs again (with its post-attach scan), its data is intact, it takes a new VDI', () => {
    const out = passed(run, 'revived');
    for (const n of ['plugD', 'vdiD']) succeeded(call(run, 'revived', n));
    // Its post-attach scan did not fail.
    expect(call(run, 'revived', 'plugD').stderr).toBe('');
    expect(out).toContain('DATA_INTACT=1');
    // The VDI from before and the new one.
    expect(/VDIS (\S+)/.exec(out)?.[1]?.split(',')).toHaveLength(2);
  });

  it('afterwards every SR detaches and nothing is left mounted', () => {
    const out = passed(run, 'cleanup');
    expect(out).toMatch(/^MOUNTS $/m);
    expect(out).toMatch(/^LEFT $/m);
  });
});
