/**
 * `hearth doctor`'s checks: the kernel features, cgroup layout, host tools and permissions the
 * daemon needs, each with what is missing and how to get it (Debian package names). Pure over a
 * `DoctorEnv` (file reads, executable probes, command runs), so unit tests use a fake host.
 *
 * What the code needs, and why:
 * - namespaces mnt, ipc, uts, net, pid: every sandbox gets them (native/src/spawn.cc); user and
 *   cgroup namespaces are only reported (seccomp refuses them inside a sandbox).
 * - kernel >= 5.12: the new mount API (open_tree, move_mount, mount_setattr) builds the sandbox
 *   root; pidfd_open, clone3 and close_range are older.
 * - cgroups: v2 with memory, pids and cpu, or v1 with memory and pids (cpu optional) (cgroups.ts).
 * - /usr/bin/node (>= 20) and /usr/bin/python3: the runtimes inside the sandboxes.
 * - nsenter and nft: private networks (net/nft-runner.ts); optional, like bwrap and crun (the
 *   benchmark's comparison sandboxes) and nats-server (the cluster work).
 */
import { findTool } from '../host-tools.js';

export type CheckGroup = 'kernel' | 'cgroups' | 'tools' | 'permissions';

export interface CheckResult {
  id: string;
  group: CheckGroup;
  /** A failed required check means the daemon cannot run; an optional one disables a feature. */
  required: boolean;
  ok: boolean;
  /** What was found (or not). */
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

export interface DoctorEnv {
  uid: number;
  /** `uname -r`. */
  kernelRelease: string;
  /** The version of the node running the CLI (process.version). */
  nodeVersion: string;
  stateDir: string;
  cgroupRoot: string;
  /** Search path for the host tools. */
  toolPath: string;
  exists(p: string): boolean;
  /** File text, or undefined when unreadable. */
  readFile(p: string): string | undefined;
  isExecutable(p: string): boolean;
  /** True when p (or, if absent, its nearest existing ancestor) is a directory this process may write. */
  canCreateDir(p: string): boolean;
  /** Runs a command; status null when it could not start. */
  run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string };
}

/** The doctor's verdict: every check, and whether all required ones passed. */
export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

const REQUIRED_NS = ['mnt', 'ipc', 'uts', 'net', 'pid', 'user'];
const INFO_NS = ['cgroup'];
/** Sysctls that stop an unprivileged process (an instance, as the pool uid) from making a user namespace, and the value that does. */
const USERNS_BLOCKERS: Array<[string, string]> = [
  ['/proc/sys/user/max_user_namespaces', '0'],
  ['/proc/sys/kernel/unprivileged_userns_clone', '0'],
  ['/proc/sys/kernel/apparmor_restrict_unprivileged_userns', '1'],
];
const MIN_KERNEL: [number, number] = [5, 12];
const MIN_NODE = 20;

function findIn(env: DoctorEnv, name: string): string | undefined {
  return findTool(name, env.toolPath, (p) => env.isExecutable(p));
}

/** "6.1.0-18-amd64" -> [6, 1]; undefined when unparsable. */
export function parseKernelRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(v: [number, number], min: [number, number]): boolean {
  return v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);
}

function kernelChecks(env: DoctorEnv): CheckResult[] {
  const out: CheckResult[] = [];
  const v = parseKernelRelease(env.kernelRelease);
  const ok = v !== undefined && atLeast(v, MIN_KERNEL);
  out.push({
    id: 'kernel-version',
    group: 'kernel',
    required: true,
    ok,
    detail: `kernel ${env.kernelRelease} (the sandbox's mount API needs >= ${MIN_KERNEL.join('.')})`,
    ...(ok ? {} : { fix: 'boot a Linux kernel 5.12 or newer (Debian 12: apt-get install linux-image-amd64)' }),
  });
  for (const ns of [...REQUIRED_NS, ...INFO_NS]) {
    const has = env.exists(`/proc/self/ns/${ns}`);
    const required = REQUIRED_NS.includes(ns);
    out.push({
      id: `ns-${ns}`,
      group: 'kernel',
      required,
      ok: has,
      detail: `${ns} namespaces ${has ? 'supported' : 'missing'} (/proc/self/ns/${ns})${required ? '' : '; not used by sandboxes'}`,
      ...(has ? {} : { fix: `a kernel built with CONFIG_${ns === 'mnt' ? 'NAMESPACES' : `${ns.toUpperCase()}_NS`}` }),
    });
  }
  if (env.exists('/proc/self/ns/user')) {
    const blocked = USERNS_BLOCKERS.filter(([f, bad]) => env.readFile(f)?.trim() === bad).map(
      ([f, bad]) => `${f.slice('/proc/sys/'.length).replace(/\//g, '.')} = ${bad}`,
    );
    out.push({
      id: 'userns-unprivileged',
      group: 'kernel',
      required: true,
      ok: blocked.length === 0,
      detail:
        blocked.length === 0
          ? 'unprivileged user namespaces allowed (each instance makes its own as the pool uid: docs/sandbox.md, Identity)'
          : `unprivileged user namespaces refused (${blocked.join(', ')}); instances make theirs as the unprivileged pool uid`,
      ...(blocked.length === 0
        ? {}
        : {
            fix: 'allow them (sysctl -w user.max_user_namespaces=65536 kernel.unprivileged_userns_clone=1 kernel.apparmor_restrict_unprivileged_userns=0), or set "userns": false in the config (one uid for every function)',
          }),
    });
  }
  const unshare = findIn(env, 'unshare');
  if (env.uid === 0 && unshare && REQUIRED_NS.every((ns) => env.exists(`/proc/self/ns/${ns}`))) {
    const r = env.run(unshare, ['--mount', '--ipc', '--uts', '--net', '--pid', '--fork', '--', 'true']);
    out.push({
      id: 'unshare',
      group: 'kernel',
      required: true,
      ok: r.status === 0,
      detail: r.status === 0 ? 'new mnt/ipc/uts/net/pid namespaces can be made' : `cannot make new namespaces: ${r.stderr.trim() || `exit ${r.status}`}`,
      ...(r.status === 0 ? {} : { fix: 'run on the host or in a privileged container (namespaces refused: seccomp or a container runtime?)' }),
    });
  }
  return out;
}

function cgroupChecks(env: DoctorEnv): CheckResult[] {
  const root = env.cgroupRoot;
  const controllers = env.readFile(`${root}/cgroup.controllers`);
  if (controllers !== undefined) {
    const have = new Set(controllers.trim().split(/\s+/));
    const out: CheckResult[] = [{ id: 'cgroup-layout', group: 'cgroups', required: true, ok: true, detail: `cgroup v2 (unified) at ${root}` }];
    for (const c of ['memory', 'pids', 'cpu']) {
      const ok = have.has(c);
      out.push({
        id: `cgroup-${c}`,
        group: 'cgroups',
        required: true,
        ok,
        detail: `${c} controller ${ok ? 'available' : 'not available'} in ${root}/cgroup.controllers`,
        ...(ok
          ? {}
          : { fix: `enable the ${c} controller (kernel CONFIG_MEMCG/CONFIG_CGROUP_PIDS/CONFIG_CGROUP_SCHED; cgroup_enable=${c} on the kernel command line)` }),
      });
    }
    return out;
  }
  const v1 = (c: string): boolean => env.exists(`${root}/${c}/cgroup.procs`);
  const anyV1 = ['memory', 'pids', 'cpu'].some(v1);
  const hybrid = env.exists(`${root}/unified/cgroup.procs`);
  const out: CheckResult[] = [
    {
      id: 'cgroup-layout',
      group: 'cgroups',
      required: true,
      ok: anyV1,
      detail: anyV1 ? `cgroup v1${hybrid ? ' (hybrid: v2 at unified/ carries no controllers)' : ''} at ${root}` : `no cgroup hierarchy found at ${root}`,
      ...(anyV1 ? {} : { fix: 'mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup), or the v1 memory and pids hierarchies' }),
    },
  ];
  if (!anyV1) return out;
  for (const c of ['memory', 'pids', 'cpu']) {
    const ok = v1(c);
    const required = c !== 'cpu';
    out.push({
      id: `cgroup-${c}`,
      group: 'cgroups',
      required,
      ok,
      detail: `v1 ${c} hierarchy ${ok ? 'mounted' : 'missing'} at ${root}/${c}${required || ok ? '' : ' (without it no CPU limits)'}`,
      ...(ok ? {} : { fix: `mount -t cgroup -o ${c} none ${root}/${c}` }),
    });
  }
  return out;
}

function nodeMajor(version: string): number | undefined {
  const m = /^v?(\d+)\./.exec(version.trim());
  return m ? Number(m[1]) : undefined;
}

interface ToolSpec {
  id: string;
  name: string;
  /** Absolute path the code runs, else looked up on the tool path. */
  path?: string;
  required: boolean;
  why: string;
  pkg: string;
}

const TOOLS: ToolSpec[] = [
  { id: 'python3', name: 'python3', path: '/usr/bin/python3', required: true, why: 'Python functions run /usr/bin/python3', pkg: 'apt-get install python3' },
  { id: 'nft', name: 'nft', required: false, why: 'private networks need nftables', pkg: 'apt-get install nftables' },
  { id: 'nsenter', name: 'nsenter', required: false, why: 'private networks apply their rules with nsenter', pkg: 'apt-get install util-linux' },
  { id: 'bwrap', name: 'bwrap', required: false, why: 'the benchmark compares against bubblewrap', pkg: 'apt-get install bubblewrap' },
  { id: 'crun', name: 'crun', required: false, why: 'the benchmark compares against crun', pkg: 'apt-get install crun' },
  { id: 'nats-server', name: 'nats-server', required: false, why: 'the multi-host work uses NATS', pkg: 'apt-get install nats-server' },
];

function toolChecks(env: DoctorEnv): CheckResult[] {
  const out: CheckResult[] = [];
  const cliMajor = nodeMajor(env.nodeVersion);
  const sandboxNode = env.isExecutable('/usr/bin/node') ? env.run('/usr/bin/node', ['--version']) : undefined;
  const sandboxMajor = sandboxNode?.status === 0 ? nodeMajor(sandboxNode.stdout) : undefined;
  const nodeOk = sandboxMajor !== undefined && sandboxMajor >= MIN_NODE && cliMajor !== undefined && cliMajor >= MIN_NODE;
  out.push({
    id: 'node',
    group: 'tools',
    required: true,
    ok: nodeOk,
    detail: `/usr/bin/node ${sandboxNode === undefined ? 'not found' : sandboxNode.stdout.trim() || 'does not run'} (Node functions run it), hearth runs on ${env.nodeVersion}; need >= ${MIN_NODE}`,
    ...(nodeOk ? {} : { fix: `install Node.js ${MIN_NODE} or newer at /usr/bin/node (apt-get install nodejs, from Debian 13 or NodeSource)` }),
  });
  for (const tool of TOOLS) {
    const found = tool.path ? (env.isExecutable(tool.path) ? tool.path : undefined) : findIn(env, tool.name);
    out.push({
      id: tool.id,
      group: 'tools',
      required: tool.required,
      ok: found !== undefined,
      detail: found ? `${tool.name}: ${found}` : `${tool.name} not found${tool.path ? ` at ${tool.path}` : ` in ${env.toolPath}`}: ${tool.why}`,
      ...(found ? {} : { fix: tool.pkg }),
    });
  }
  return out;
}

function permissionChecks(env: DoctorEnv): CheckResult[] {
  const root = env.uid === 0;
  const writable = env.canCreateDir(env.stateDir);
  return [
    {
      id: 'root',
      group: 'permissions',
      required: true,
      ok: root,
      detail: root ? 'running as root' : `running as uid ${env.uid}; the daemon builds namespaces, mounts and cgroups`,
      ...(root ? {} : { fix: 'run the daemon (and this check) as root: sudo hearth doctor' }),
    },
    {
      id: 'state-dir',
      group: 'permissions',
      required: true,
      ok: writable,
      detail: `state directory ${env.stateDir} ${writable ? 'writable' : 'not writable'}`,
      ...(writable ? {} : { fix: `run as root, or choose a writable --state-dir` }),
    },
  ];
}

/** Runs every check against env. */
export function runChecks(env: DoctorEnv): DoctorReport {
  const checks = [...kernelChecks(env), ...cgroupChecks(env), ...toolChecks(env), ...permissionChecks(env)];
  return { ok: checks.every((c) => c.ok || !c.required), checks };
}

/** Human-readable report: one line per check, fixes under the failed ones, a verdict last. */
export function formatReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const group of ['kernel', 'cgroups', 'tools', 'permissions'] as const) {
    lines.push(`${group}:`);
    for (const c of report.checks.filter((x) => x.group === group)) {
      const mark = c.ok ? 'ok     ' : c.required ? 'MISSING' : 'missing';
      lines.push(`  ${mark}  ${c.detail}`);
      if (!c.ok && c.fix) lines.push(`           fix: ${c.fix}`);
    }
  }
  const failed = report.checks.filter((c) => !c.ok && c.required).length;
  const optional = report.checks.filter((c) => !c.ok && !c.required).length;
  lines.push(
    failed === 0
      ? `hearth can run here${optional > 0 ? ` (${optional} optional feature${optional > 1 ? 's' : ''} missing)` : ''}`
      : `hearth cannot run here: ${failed} required check${failed > 1 ? 's' : ''} failed`,
  );
  return lines.join('\n') + '\n';
}
