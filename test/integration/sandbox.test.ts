/**
 * The sandbox's promises, checked from inside real sandboxes (root only): a probe program runs
 * Python snippets sent over fd 3 and reports what it saw. Every case runs against both ways an
 * instance is made: spawned directly by the addon (`spawn`), and forked by the Python zygote
 * (`zygote`). Teardown checks that no cgroup, process or mount of the test is left on the host.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeFrame } from '../../src/wire/frame.js';
import { FrameChannel } from './frame-channel.js';
import { checkDeniedSyscalls, SYSCALL_PROBE } from './syscall-probe.js';
import { nativeDirCandidates } from '../../src/sandbox/binding.js';
import { SandboxDriver, type InstanceLimits } from '../../src/sandbox/sandbox-driver.js';

const isRoot = process.getuid?.() === 0;
const built = nativeDirCandidates().some((d) => fs.existsSync(path.join(d, 'hearth.node')));
const skipReason = !isRoot ? 'needs root' : !built ? 'addon not built (npm run build:native)' : '';
const it = skipReason ? test.skip : test.serial;
/** The probe: a module the zygote can import (serve(fd)) and a script the addon can exec. */
const PROBE_FILE = path.join(__dirname, '..', '..', '..', 'test', 'integration', 'fixtures', 'sandbox-probe', 'probe.py');
if (skipReason) test.serial('sandbox integration tests skipped', (t) => t.log(`skipped: ${skipReason}`) ?? t.pass());

const CTYPES = `
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def err(rc):
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())) if rc != 0 else 'ok'
`;

interface ProbeResult {
  result?: unknown;
  error?: string;
}

class Probe extends FrameChannel {
  async run(code: string): Promise<ProbeResult> {
    return await this.request({ t: 'run', code });
  }
  async value(code: string): Promise<unknown> {
    const r = await this.run(code);
    if (r.error) throw new Error(`probe error: ${r.error}`);
    return r.result;
  }
}

const LIMITS: InstanceLimits = { memoryMb: 128, pids: 32, cpuPercent: 100, tmpMb: 4 };
const parent = `hearth-test-${randomBytes(4).toString('hex')}`;
let stateDir = '';
let probeDir = '';
let driver: SandboxDriver | undefined;
let counter = 0;
let hostMountsBefore = 0;

function hearthMounts(): number {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes('hearth')).length;
}

test.before(async () => {
  if (skipReason) return;
  hostMountsBefore = hearthMounts();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-sbx-'));
  fs.writeFileSync(path.join(stateDir, 'secret'), 'state dir secret');
  probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-probe-'));
  fs.copyFileSync(PROBE_FILE, path.join(probeDir, 'probe.py'));
  fs.chmodSync(probeDir, 0o755);
  driver = new SandboxDriver({
    stateDir,
    cgroupName: parent,
    extraBinds: [{ src: probeDir, dst: '/hearth/probe' }],
    zygoteArgs: ['--module', 'probe', '--module-path', '/hearth/probe'],
  });
  await driver.start();
});

test.after.always(async () => {
  if (skipReason) return;
  await driver?.stop();
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(probeDir, { recursive: true, force: true });
});

type Kind = 'spawn' | 'zygote';
const KINDS: Kind[] = ['spawn', 'zygote'];

async function start(kind: Kind, limits: InstanceLimits = LIMITS): Promise<Probe> {
  const id = `t${++counter}`;
  const proc =
    kind === 'spawn'
      ? await driver!.spawnProgram(id, limits, ['/usr/bin/python3', '-I', '-S', '/hearth/probe/probe.py'])
      : await driver!.spawnPython(id, limits);
  const probe = new Probe(proc);
  const ready = await probe.next();
  if (ready['t'] !== 'ready') throw new Error(`unexpected first frame ${JSON.stringify(ready)}`);
  return probe;
}

async function withProbe(t: ExecutionContext, kind: Kind, fn: (p: Probe) => Promise<void>, limits?: InstanceLimits): Promise<void> {
  t.timeout(60_000);
  const p = await start(kind, limits);
  try {
    await fn(p);
  } finally {
    p.proc.kill();
    await p.proc.exited;
  }
}

for (const kind of KINDS) {
  it(`${kind}: sees only its own processes, as an unprivileged user`, async (t) => {
    await withProbe(t, kind, async (p) => {
      const pids = (await p.value("result = sorted(int(x) for x in os.listdir('/proc') if x.isdigit())")) as number[];
      t.deepEqual(pids, [1, 2], 'PID 1 (the reaper) and the runtime');
      t.is(await p.value('result = os.getpid()'), 2);
      t.deepEqual(await p.value('result = [os.getuid(), os.getgid(), os.getgroups()]'), [65534, 65534, []]);
    });
  });

  it(`${kind}: has no capabilities, no_new_privs and a seccomp filter`, async (t) => {
    await withProbe(t, kind, async (p) => {
      const status = (await p.value("result = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)")) as Record<
        string,
        string
      >;
      for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) t.is(status[k]?.trim(), '0000000000000000', k);
      t.is(status['NoNewPrivs']?.trim(), '1');
      t.is(status['Seccomp']?.trim(), '2');
    });
  });

  it(`${kind}: cannot read /root, /home, /run or the state directory`, async (t) => {
    await withProbe(t, kind, async (p) => {
      const seen = await p.value(
        `result = {d: os.path.exists(d) for d in ['/root', '/home', '/run', '/var/lib/hearth', ${JSON.stringify(stateDir)}, ${JSON.stringify(path.join(stateDir, 'secret'))}, '/etc/shadow', '/sys']}`,
      );
      t.deepEqual(Object.values(seen as Record<string, boolean>).filter(Boolean), []);
    });
  });

  it(`${kind}: cannot write outside /tmp, and /tmp only up to its size`, async (t) => {
    await withProbe(t, kind, async (p) => {
      for (const target of ['/x', '/usr/x', '/code/x', '/etc/passwd', '/hearth/runtimes/x']) {
        const r = await p.run(`open(${JSON.stringify(target)}, 'w')`);
        t.regex(r.error ?? 'no error', /Read-only file system|Permission denied/, target);
      }
      t.is(await p.value("open('/tmp/ok', 'w').write('hi'); result = open('/tmp/ok').read()"), 'hi');
      const big = await p.run(`f = open('/tmp/big', 'wb')\nfor i in range(${LIMITS.tmpMb + 2}): f.write(b'x' * 1048576); f.flush()`);
      t.regex(big.error ?? 'no error', /No space left on device/);
    });
  });

  it(`${kind}: each denied system call family fails with EPERM (${kind === 'spawn' ? 'general' : 'python'} seccomp profile)`, async (t) => {
    await withProbe(t, kind, async (p) => {
      const r = (await p.value(`${SYSCALL_PROBE}\nresult = main()`)) as Record<string, string>;
      checkDeniedSyscalls(t, r);
    });
  });

  it(`${kind}: mount, unshare, setns and namespace clones fail with EPERM`, async (t) => {
    await withProbe(t, kind, async (p) => {
      const r = (await p.value(
        CTYPES +
          `
result = {
  'mount': err(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),
  'umount': err(libc.umount2(b'/proc', 2)),
  'unshare_user': err(libc.unshare(0x10000000)),
  'unshare_ns': err(libc.unshare(0x00020000)),
  'setns': err(libc.setns(0, 0)),
  'clone_newuser': err(0 if libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0) >= 0 else -1),
  'clone_newnet': err(0 if libc.syscall(56, 0x40000000 | 17, 0, 0, 0, 0) >= 0 else -1),
  'pivot_root': err(libc.syscall(155, b'/tmp', b'/tmp')),
  'ptrace': err(0 if libc.ptrace(16, 1, 0, 0) == 0 else -1),
  'chroot': err(libc.chroot(b'/tmp')),
}
`,
      )) as Record<string, string>;
      for (const [k, v] of Object.entries(r)) t.is(v, 'EPERM', k);
      // ordinary fork still works (clone without namespace flags)
      t.is(await p.value('pid = os.fork()\nif pid == 0: os._exit(7)\nresult = os.WEXITSTATUS(os.waitpid(pid, 0)[1])'), 7);
    });
  });

  it(`${kind}: cannot reach a TCP listener on the host's 127.0.0.1`, async (t) => {
    const server = net.createServer((s) => s.end('host'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await withProbe(t, kind, async (p) => {
        const r = await p.run(`import socket\nsocket.create_connection(('127.0.0.1', ${port}), timeout=2)`);
        t.regex(r.error ?? 'connected', /Connection refused|timed out|unreachable/);
        const ifs = await p.value('import socket\nresult = sorted(n for _, n in socket.if_nameindex())');
        t.deepEqual(ifs, ['lo']);
      });
    } finally {
      server.close();
    }
  });

  it(`${kind}: memory limit kills the instance and reports oomKilled`, async (t) => {
    t.timeout(60_000);
    const p = await start(kind, { ...LIMITS, memoryMb: 48 });
    p.proc.socket.write(encodeFrame({ t: 'run', code: "x = b'a' * (200 * 1024 * 1024)\nresult = len(x)" }));
    const exit = await p.proc.exited;
    t.true(exit.oomKilled);
    t.is(exit.signal, 9);
  });

  it(`${kind}: pids limit contains a fork bomb`, async (t) => {
    await withProbe(
      t,
      kind,
      async (p) => {
        const r = (await p.value(`
import signal, time

n = 0
err = None
for i in range(200):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
result = [n, err]
`)) as [number, number | null];
        t.true(r[0] < 16, `forked ${r[0]}`);
        t.is(r[1], 11); // EAGAIN
      },
      { ...LIMITS, pids: 16 },
    );
    // the host still forks
    t.truthy(fs.readFileSync('/proc/self/stat', 'utf8'));
  });

  it(`${kind}: mountCode makes /code readable, not writable, and private to the instance`, async (t) => {
    const code = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-code-'));
    fs.writeFileSync(path.join(code, 'handler.py'), 'X = 1\n');
    fs.chmodSync(code, 0o755);
    try {
      await withProbe(t, kind, async (p) => {
        const other = await start(kind);
        try {
          t.deepEqual(await p.value("result = os.listdir('/code')"), []);
          p.proc.mountCode(code);
          t.deepEqual(await p.value("result = os.listdir('/code')"), ['handler.py']);
          t.is(await p.value("result = open('/code/handler.py').read()"), 'X = 1\n');
          const w = await p.run("open('/code/new.py', 'w')");
          t.regex(w.error ?? 'no error', /Read-only file system/);
          const opts = await p.value("result = [l for l in open('/proc/self/mountinfo').read().splitlines() if ' /code ' in l][0]");
          t.regex(String(opts), / \/code ro,nosuid,nodev/);
          t.deepEqual(await other.value("result = os.listdir('/code')"), []);
        } finally {
          other.proc.kill();
          await other.proc.exited;
        }
      });
      t.is(hearthMounts(), hostMountsBefore);
    } finally {
      fs.rmSync(code, { recursive: true, force: true });
    }
  });
}

it('spawn: a bad bind source fails loudly and leaves nothing behind', async (t) => {
  const bad = new SandboxDriver({
    stateDir,
    cgroupName: `${parent}-bad`,
    extraBinds: [{ src: '/nonexistent-hearth-test', dst: '/x' }],
  });
  await bad.start();
  try {
    const err = await t.throwsAsync(bad.spawnProgram('bad1', LIMITS, ['/usr/bin/true']));
    t.regex(err.message, /nonexistent-hearth-test/);
    t.is((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
  } finally {
    await bad.stop();
  }
  t.false(fs.existsSync(`/sys/fs/cgroup/pids/${parent}-bad`));
});

it('node runtime starts in a sandbox and says ready', async (t) => {
  const shim = path.join(__dirname, '../../../src/runtimes/node/shim.js');
  if (!fs.existsSync(shim)) return t.pass('node shim not present');
  t.timeout(60_000);
  const proc = await driver!.spawnNode(`n${++counter}`, { ...LIMITS, memoryMb: 256 });
  const probe = new Probe(proc);
  const ready = await probe.next();
  t.is(ready['t'], 'ready');
  t.is(ready['runtime'], 'node');
  t.is(ready['pid'], 2, 'PID 2: PID 1 is hearth-init');
  proc.kill();
  const exit = await proc.exited;
  t.is(exit.signal, 9);
  t.false(exit.oomKilled);
});

it('the zygote is restarted after it dies', async (t) => {
  t.timeout(60_000);
  const before = await start('zygote');
  const zygotePid = (driver as unknown as { zygote: { pid: number } }).zygote.pid;
  process.kill(zygotePid, 'SIGKILL');
  // the running instance survives its zygote
  t.deepEqual(await before.value('result = 1'), 1);
  const after = await start('zygote');
  t.not((driver as unknown as { zygote: { pid: number } }).zygote.pid, zygotePid);
  for (const p of [before, after]) {
    p.proc.kill();
    await p.proc.exited;
  }
});

it('stop removes every cgroup, process and mount it made', async (t) => {
  t.timeout(60_000);
  const p = await start('zygote');
  const q = await start('spawn');
  const pids = [p.proc.pid, q.proc.pid];
  await driver!.stop();
  for (const ctl of ['memory', 'pids', 'cpu']) t.false(fs.existsSync(`/sys/fs/cgroup/${ctl}/${parent}`), ctl);
  for (const pid of pids) t.false(fs.existsSync(`/proc/${pid}`), `pid ${pid}`);
  t.is(hearthMounts(), hostMountsBefore);
  driver = undefined;
});
