/**
 * Instances that join a prepared network namespace (`netnsFd`) instead of getting a new empty one
 * (root only). The test makes the namespace itself with the net addon (`createNetns`), marks it
 * with a link (a bridge) carrying an address and brings `lo` up, then checks from inside a Python
 * instance spawned by the addon, a Python instance forked by the zygote and a Node instance (the
 * real shim) that: the instance is in exactly that namespace (same nsfs inode, sees the marker),
 * every other namespace is still its own, privileges are still dropped, and neither the instance
 * nor the zygote keeps a copy of the namespace fd. The caller's fd stays open and usable.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FrameChannel } from './frame-channel.js';
import { loadNetBinding, type NetBinding } from '../../src/net/native-binding.js';
import { nativeDirCandidates } from '../../src/sandbox/binding.js';
import { SandboxDriver, type InstanceLimits } from '../../src/sandbox/sandbox-driver.js';

const isRoot = process.getuid?.() === 0;
const built = nativeDirCandidates().some((d) => fs.existsSync(path.join(d, 'hearth.node')));
let net: NetBinding | undefined;
let netError = '';
try {
  net = loadNetBinding();
} catch (e) {
  netError = (e as Error).message.split('\n')[0]!;
}
const skipReason = !isRoot ? 'needs root' : !built ? 'addon not built (npm run build:native)' : !net ? `net addon: ${netError}` : '';
const it = skipReason ? test.skip : test.serial;
/** The probe: a module the zygote can import (serve(fd)) and a script the addon can exec. */
const PROBE_FILE = path.join(__dirname, '..', '..', '..', 'test', 'integration', 'fixtures', 'sandbox-probe', 'probe.py');
if (skipReason) test.serial('sandbox netns tests skipped', (t) => t.log(`skipped: ${skipReason}`) ?? t.pass());

/** What an instance reports about itself (same shape from the Python probe and the Node handler). */
interface SelfReport {
  ns: Record<string, string>;
  pids: number[];
  ids: [number, number];
  status: Record<string, string>;
  links: string[];
  /** open fds of the process: number -> readlink target */
  fds: Record<string, string>;
}

const PY_REPORT = `
import socket

def _fds():
    out = {}
    for fd in range(0, 4096):
        try:
            os.fstat(fd)
        except OSError:
            continue
        try:
            out[str(fd)] = os.readlink('/proc/self/fd/%d' % fd)
        except OSError as e:
            out[str(fd)] = 'unreadable: %s' % e
    return out
fds = _fds()  # first: listing /proc/self/fd would open a directory fd of its own
status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)
result = {
  'ns': {n: os.readlink('/proc/self/ns/' + n) for n in ['net', 'mnt', 'pid', 'ipc', 'uts']},
  'pids': sorted(int(x) for x in os.listdir('/proc') if x.isdigit()),
  'ids': [os.getuid(), os.getgid()],
  'status': {k: status[k].strip() for k in ['CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp']},
  'links': sorted(n for _, n in socket.if_nameindex()),
  'fds': fds,
}
`;

const NODE_HANDLER = `
const fs = require('fs');
exports.handler = async () => {
  const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\\n').map((l) => l.split(':\\t')).filter((p) => ['CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp'].includes(p[0])).map(([k, v]) => [k, v.trim()]));
  const fds = {};
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try { fds[fd] = fs.readlinkSync('/proc/self/fd/' + fd); } catch (e) { fds[fd] = 'gone: ' + e.code; }
  }
  return {
    ns: Object.fromEntries(['net', 'mnt', 'pid', 'ipc', 'uts'].map((n) => [n, fs.readlinkSync('/proc/self/ns/' + n)])),
    pids: fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map(Number).sort((a, b) => a - b),
    ids: [process.getuid(), process.getgid()],
    status,
    links: fs.readFileSync('/proc/net/dev', 'utf8').split('\\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean).sort(),
    fds,
  };
};
`;

const LIMITS: InstanceLimits = { memoryMb: 128, pids: 32, cpuPercent: 100, tmpMb: 4 };
const MARKER_LINK = `hmark${randomBytes(2).toString('hex')}`;
const MARKER_ADDR = '10.201.77.9';
const parent = `hearth-test-${randomBytes(4).toString('hex')}`;
let stateDir = '';
let probeDir = '';
let codeDir = '';
let driver: SandboxDriver | undefined;
let netnsFd = -1;
let netnsIno = 0;
let counter = 0;

function hostNs(name: string): string {
  return fs.readlinkSync(`/proc/self/ns/${name}`);
}

/** Host pid -> readlink of each of its fds (by root, from the host). */
function hostFds(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

test.before(async () => {
  if (skipReason) return;
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-sbx-netns-'));
  probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-probe-'));
  fs.copyFileSync(PROBE_FILE, path.join(probeDir, 'probe.py'));
  fs.chmodSync(probeDir, 0o755);
  codeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-code-'));
  fs.writeFileSync(path.join(codeDir, 'index.js'), NODE_HANDLER);
  fs.chmodSync(codeDir, 0o755);
  // The prepared namespace: held by this fd only (O_CLOEXEC), with lo up and a marker link.
  netnsFd = net!.createNetns();
  netnsIno = fs.fstatSync(netnsFd).ino;
  net!.setLink(netnsFd, 'lo', { up: true });
  net!.createBridge(netnsFd, MARKER_LINK); // dummy links need a module this host may lack
  net!.addAddress(netnsFd, MARKER_LINK, MARKER_ADDR, 32);
  net!.setLink(netnsFd, MARKER_LINK, { up: true });
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
  if (netnsFd >= 0) fs.closeSync(netnsFd); // the last reference: the kernel frees the namespace and its links
  for (const d of [stateDir, probeDir, codeDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

async function startPython(kind: 'spawn' | 'zygote', opts?: { netnsFd?: number }): Promise<FrameChannel> {
  const id = `x${++counter}`;
  const proc =
    kind === 'spawn'
      ? await driver!.spawnProgram(id, LIMITS, ['/usr/bin/python3', '-I', '-S', '/hearth/probe/probe.py'], opts)
      : await driver!.spawnPython(id, LIMITS, opts);
  const ch = new FrameChannel(proc);
  const ready = await ch.next();
  if (ready['t'] !== 'ready') throw new Error(`unexpected first frame ${JSON.stringify(ready)}`);
  return ch;
}

async function pyReport(ch: FrameChannel): Promise<SelfReport> {
  const r = await ch.request({ t: 'run', code: PY_REPORT });
  if (r['error']) throw new Error(`probe error: ${JSON.stringify(r['error'])}`);
  return r['result'] as SelfReport;
}

async function stop(ch: FrameChannel): Promise<void> {
  ch.proc.kill();
  await ch.proc.exited;
}

/** The promises every joined instance keeps, whatever made it. */
function checkJoined(t: ExecutionContext, r: SelfReport, strictFds: boolean): void {
  t.is(r.ns['net'], `net:[${netnsIno}]`, 'in the prepared network namespace');
  t.true(r.links.includes(MARKER_LINK), `sees the marker link: ${r.links.join(',')}`);
  t.true(r.links.includes('lo'));
  for (const n of ['mnt', 'pid', 'ipc', 'uts']) t.not(r.ns[n], hostNs(n), `${n} namespace is its own`);
  t.deepEqual(r.pids, [1, 2], 'alone in its own PID namespace with its PID 1 (the reaper)');
  t.deepEqual(r.ids, [65534, 65534]);
  t.is(r.status['CapEff'], '0000000000000000');
  t.is(r.status['CapBnd'], '0000000000000000');
  t.is(r.status['NoNewPrivs'], '1');
  t.is(r.status['Seccomp'], '2');
  const links = Object.values(r.fds);
  t.false(
    links.some((l) => l.startsWith('net:')),
    `no namespace fd inside: ${JSON.stringify(r.fds)}`,
  );
  if (strictFds) {
    t.deepEqual(
      Object.keys(r.fds)
        .map(Number)
        .sort((a, b) => a - b),
      [0, 1, 2, 3],
      JSON.stringify(r.fds),
    );
    t.regex(r.fds['3'] ?? '', /^socket:/);
  }
}

for (const kind of ['spawn', 'zygote'] as const) {
  it(`${kind}: a python instance joins the prepared network namespace, everything else stays new`, async (t) => {
    t.timeout(60_000);
    const ch = await startPython(kind, { netnsFd });
    try {
      const r = await pyReport(ch);
      checkJoined(t, r, true);
      // the marker's address is configured there (and reachable: a UDP socket binds to it)
      const bound = await ch.request({
        t: 'run',
        code: `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind((${JSON.stringify(MARKER_ADDR)}, 0))\nresult = s.getsockname()[0]\ns.close()`,
      });
      t.is(bound['result'], MARKER_ADDR, JSON.stringify(bound));
      // setns out again is refused (seccomp)
      const back = await ch.request({
        t: 'run',
        code: "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfd = os.open('/proc/self/ns/net', os.O_RDONLY)\nrc = libc.setns(fd, 0x40000000)\nresult = [rc, ctypes.get_errno()]\nos.close(fd)",
      });
      t.deepEqual(back['result'], [-1, 1], 'setns: EPERM');
      if (kind === 'zygote') {
        const zygotePid = (driver as unknown as { zygote: { pid: number } }).zygote.pid;
        t.false(hostFds(zygotePid).includes(`net:[${netnsIno}]`), 'the zygote closed its copy of the netns fd');
      }
      // the caller's fd is untouched: still open, still that namespace
      t.is(fs.fstatSync(netnsFd).ino, netnsIno);
    } finally {
      await stop(ch);
    }
    t.is(fs.fstatSync(netnsFd).ino, netnsIno, 'still open after the instance ended');
  });

  it(`${kind}: without netnsFd an instance still gets a new, empty network namespace`, async (t) => {
    t.timeout(60_000);
    const ch = await startPython(kind);
    try {
      const r = await pyReport(ch);
      t.not(r.ns['net'], `net:[${netnsIno}]`);
      t.not(r.ns['net'], hostNs('net'));
      t.deepEqual(r.links, ['lo']);
    } finally {
      await stop(ch);
    }
  });

  it(`${kind}: an fd that is not a network namespace fails the spawn and leaves nothing behind`, async (t) => {
    t.timeout(60_000);
    const notNsPath = path.join(stateDir, `not-a-netns-${kind}`);
    fs.writeFileSync(notNsPath, '');
    const notNs = fs.openSync(notNsPath, 'r');
    const id = `bad${++counter}`;
    try {
      const err = await t.throwsAsync(
        kind === 'spawn' ? driver!.spawnProgram(id, LIMITS, ['/usr/bin/true'], { netnsFd: notNs }) : driver!.spawnPython(id, LIMITS, { netnsFd: notNs }),
      );
      t.regex(err.message, /setns/);
      if (kind === 'spawn') t.is((err.cause as NodeJS.ErrnoException).code, 'EINVAL');
      t.false(driver!.liveIds().includes(id));
      t.false(fs.existsSync(`/sys/fs/cgroup/pids/${parent}/${id}`));
      if (kind === 'zygote') {
        const zygotePid = (driver as unknown as { zygote: { pid: number } }).zygote.pid;
        t.false(hostFds(zygotePid).includes(notNsPath), 'the zygote closed every fd it received');
      }
    } finally {
      fs.closeSync(notNs);
    }
    // the next spawn with the right fd still works
    const ch = await startPython(kind, { netnsFd });
    try {
      t.is((await pyReport(ch)).ns['net'], `net:[${netnsIno}]`);
    } finally {
      await stop(ch);
    }
  });
}

it('node: the node shim runs in the prepared network namespace with everything else new', async (t) => {
  t.timeout(60_000);
  const proc = await driver!.spawnNode(`n${++counter}`, { ...LIMITS, memoryMb: 256 }, { netnsFd });
  const ch = new FrameChannel(proc);
  try {
    const ready = await ch.next();
    t.is(ready['t'], 'ready');
    t.is(ready['pid'], 2, 'PID 2: PID 1 is hearth-init');
    proc.mountCode(codeDir);
    const spec = await ch.request({ t: 'specialize', name: 'netns', handler: 'index.handler', memoryMb: 256, timeoutMs: 10_000, env: {} });
    t.is(spec['t'], 'specialized', JSON.stringify(spec));
    const res = await ch.request({ t: 'invoke', id: 'i1', event: {}, deadline: Date.now() + 10_000 });
    t.is(res['t'], 'result', JSON.stringify(res));
    // Node opens fds of its own (epoll, eventfds, pipes): only the absence of a namespace fd is checked
    checkJoined(t, res['result'] as SelfReport, false);
  } finally {
    proc.kill();
    await proc.exited;
  }
});
