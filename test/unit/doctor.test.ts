/** `hearth doctor`'s checks against fake hosts: what passes, what is reported missing and how to fix it. */
import test from 'ava';
import { formatReport, parseKernelRelease, runChecks, type DoctorEnv } from '../../src/doctor/checks.js';

interface FakeHost {
  uid?: number;
  kernel?: string;
  files?: Record<string, string>;
  executables?: string[];
  writable?: boolean;
  unshareStatus?: number;
  sandboxNode?: string;
}

const NS = ['mnt', 'ipc', 'uts', 'net', 'pid', 'user', 'cgroup'].map((n) => `/proc/self/ns/${n}`);
const TOOLS = [
  '/usr/bin/python3',
  '/usr/bin/node',
  '/usr/sbin/nft',
  '/usr/bin/nsenter',
  '/usr/bin/unshare',
  '/usr/bin/bwrap',
  '/usr/bin/crun',
  '/usr/sbin/nats-server',
];

function env(h: FakeHost = {}): DoctorEnv & { ran: string[][] } {
  const files = h.files ?? { '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n' };
  const present = new Set([...NS, ...Object.keys(files)]);
  const exec = new Set(h.executables ?? TOOLS);
  const ran: string[][] = [];
  return {
    ran,
    uid: h.uid ?? 0,
    kernelRelease: h.kernel ?? '6.1.0-18-amd64',
    nodeVersion: 'v20.11.0',
    stateDir: '/var/lib/hearth',
    cgroupRoot: '/sys/fs/cgroup',
    toolPath: '/usr/sbin:/usr/bin:/sbin:/bin',
    exists: (p) => present.has(p),
    readFile: (p) => files[p],
    isExecutable: (p) => exec.has(p),
    canCreateDir: () => h.writable ?? true,
    run: (cmd, args) => {
      ran.push([cmd, ...args]);
      if (cmd === '/usr/bin/node') return { status: 0, stdout: `${h.sandboxNode ?? 'v20.11.0'}\n`, stderr: '' };
      return { status: h.unshareStatus ?? 0, stdout: '', stderr: h.unshareStatus ? 'unshare: unshare failed: Operation not permitted' : '' };
    },
  };
}

const byId = (r: ReturnType<typeof runChecks>, id: string) => r.checks.find((c) => c.id === id);

test('a complete v2 host passes every check and tries the namespaces it needs', (t) => {
  const e = env();
  const r = runChecks(e);
  t.true(r.ok);
  t.deepEqual(
    r.checks.filter((c) => !c.ok),
    [],
  );
  t.deepEqual(
    e.ran.find((a) => a[0] === '/usr/bin/unshare'),
    ['/usr/bin/unshare', '--mount', '--ipc', '--uts', '--net', '--pid', '--fork', '--', 'true'],
  );
  t.regex(formatReport(r), /hearth can run here\n$/);
});

test('a host that refuses unprivileged user namespaces fails with the sysctl that does and how to fix it', (t) => {
  const r = runChecks(
    env({ files: { '/sys/fs/cgroup/cgroup.controllers': 'memory pids cpu\n', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1\n' } }),
  );
  t.false(r.ok);
  t.like(byId(r, 'userns-unprivileged'), { ok: false, required: true });
  t.regex(byId(r, 'userns-unprivileged')!.detail, /kernel\.apparmor_restrict_unprivileged_userns = 1/);
  t.regex(byId(r, 'userns-unprivileged')!.fix ?? '', /"userns": false/);
  const ok = runChecks(env({ files: { '/sys/fs/cgroup/cgroup.controllers': 'memory pids cpu\n', '/proc/sys/user/max_user_namespaces': '96362\n' } }));
  t.like(byId(ok, 'userns-unprivileged'), { ok: true });
});

test('missing optional tools are named with their package, and do not fail the verdict', (t) => {
  const r = runChecks(env({ executables: ['/usr/bin/python3', '/usr/bin/node', '/usr/bin/unshare'] }));
  t.true(r.ok);
  t.like(byId(r, 'nft'), { ok: false, required: false, fix: 'apt-get install nftables' });
  t.like(byId(r, 'bwrap'), { ok: false, fix: 'apt-get install bubblewrap' });
  t.regex(byId(r, 'nft')!.detail, /private networks need nftables/);
  const text = formatReport(r);
  t.regex(text, /missing {2}nft not found in \/usr\/sbin:\/usr\/bin:\/sbin:\/bin/);
  t.regex(text, /fix: apt-get install nftables/);
  t.regex(text, /5 optional features missing/);
});

test('python3 and node are required; an old node fails', (t) => {
  const r = runChecks(env({ executables: ['/usr/bin/node', '/usr/bin/unshare'], sandboxNode: 'v18.19.0' }));
  t.false(r.ok);
  t.like(byId(r, 'python3'), { ok: false, required: true, fix: 'apt-get install python3' });
  t.like(byId(r, 'node'), { ok: false, required: true });
  t.regex(byId(r, 'node')!.detail, /v18\.19\.0/);
  t.regex(formatReport(r), /hearth cannot run here: 2 required checks failed\n$/);
});

test('an old kernel, a missing namespace and refused unshare fail', (t) => {
  t.deepEqual(parseKernelRelease('5.10.0-28-amd64'), [5, 10]);
  t.is(parseKernelRelease('weird'), undefined);
  const old = runChecks(env({ kernel: '5.10.0-28-amd64' }));
  t.false(old.ok);
  t.like(byId(old, 'kernel-version'), { ok: false, required: true });
  t.true(runChecks(env({ kernel: '5.12.0' })).ok);

  const refused = runChecks(env({ unshareStatus: 1 }));
  t.false(refused.ok);
  t.regex(byId(refused, 'unshare')!.detail, /Operation not permitted/);
});

test('cgroup v2 without the cpu controller fails naming it', (t) => {
  const r = runChecks(env({ files: { '/sys/fs/cgroup/cgroup.controllers': 'memory pids\n' } }));
  t.false(r.ok);
  t.like(byId(r, 'cgroup-cpu'), { ok: false, required: true });
  t.like(byId(r, 'cgroup-memory'), { ok: true });
});

test('cgroup v1 and hybrid: memory and pids required, cpu optional', (t) => {
  const hybrid = runChecks(
    env({ files: { '/sys/fs/cgroup/memory/cgroup.procs': '', '/sys/fs/cgroup/pids/cgroup.procs': '', '/sys/fs/cgroup/unified/cgroup.procs': '' } }),
  );
  t.true(hybrid.ok);
  t.regex(byId(hybrid, 'cgroup-layout')!.detail, /cgroup v1 \(hybrid/);
  t.like(byId(hybrid, 'cgroup-cpu'), { ok: false, required: false });
  const noPids = runChecks(env({ files: { '/sys/fs/cgroup/memory/cgroup.procs': '' } }));
  t.false(noPids.ok);
  t.like(byId(noPids, 'cgroup-pids'), { ok: false, required: true, fix: 'mount -t cgroup -o pids none /sys/fs/cgroup/pids' });
  const none = runChecks(env({ files: {} }));
  t.false(none.ok);
  t.like(byId(none, 'cgroup-layout'), { ok: false });
});

test('not root, or a state dir that cannot be written, fails; unshare is then not tried', (t) => {
  const e = env({ uid: 1000, writable: false });
  const r = runChecks(e);
  t.false(r.ok);
  t.like(byId(r, 'root'), { ok: false, required: true });
  t.like(byId(r, 'state-dir'), { ok: false, required: true });
  t.is(byId(r, 'unshare'), undefined);
  t.false(e.ran.some((a) => a[0] === '/usr/bin/unshare'));
});
