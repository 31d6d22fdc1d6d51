/*
 * spawn(): start a process in new mount/net/ipc/uts (and optionally pid) namespaces with a
 * read-only root assembled from binds, joined to cgroups, with fd 3 as its socket. With `netnsFd`
 * the child joins that (prepared) network namespace with setns() instead of getting a new one.
 *
 * The child shares the parent's memory (CLONE_VM|CLONE_VFORK, like posix_spawn): no page tables are
 * copied and the calling thread sleeps until the child has called execve() or exited. The child
 * makes raw system calls only and reports a failure (step, errno, index) through shared memory.
 *
 * Man pages: clone(2) (CLONE_VM, CLONE_VFORK, CLONE_PIDFD, CLONE_NEW*), namespaces(7),
 * pid_namespaces(7), network_namespaces(7), setns(2), cgroups(7), sigaction(2), sigprocmask(2), pthread_sigmask(3),
 * dup2(2), close_range(2), prlimit(2), execve(2), waitpid(2), stat(2), mmap(2).
 */
#include <fcntl.h>
#include <napi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <set>
#include <string>
#include <vector>

#include "hearth/sandbox.h"
#include "inner-paths.h"
#include "js-args.h"
#include "raw-syscall.h"
#include "system-error.h"

namespace hearth {
namespace {

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

constexpr size_t kChildStackSize = 256 * 1024;

struct ChildContext {
  const hearth_rootfs_spec *rootfs;
  const char *const *cgroup_procs;
  int n_cgroups;
  int socket_fd;
  /* >= 0: join this network namespace (setns) instead of CLONE_NEWNET; the parent keeps the fd */
  int netns_fd;
  bool new_pid;
  int tmp_mb;
  int seccomp_profile;
  unsigned uid;
  unsigned gid;
  /* non-zero: a user namespace of its own, ids unmapped until specialisation (sandbox.h) */
  int userns;
  const char *hostname;
  long nofile;
  char *const *argv;
  char *const *envp;
  /* written by the child (shared memory), read by the parent after clone() returns */
  volatile int step;
  volatile int err;
  volatile int index;
};

struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};

[[noreturn]] void ChildFail(ChildContext *ctx, int step, long err, int index = -1) {
  ctx->index = index;
  ctx->err = static_cast<int>(-err);
  ctx->step = step;
  hearth_sys_exit(127);
}

int ChildMain(void *arg) {
  ChildContext *ctx = static_cast<ChildContext *>(arg);
  /* Signals arrive blocked (the parent blocked them all): reset every handler, then unblock. */
  KernelSigaction dfl = {SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    hearth_sys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
  }
  unsigned long empty = 0;
  long r = hearth_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);
  if (r != 0) ChildFail(ctx, HEARTH_STEP_SIGNALS, r);

  /* First, while the child is still fully privileged and unfiltered (seccomp refuses setns). */
  if (ctx->netns_fd >= 0) {
    r = hearth_sys(SYS_setns, ctx->netns_fd, CLONE_NEWNET);
    if (r != 0) ChildFail(ctx, HEARTH_STEP_SETNS_NET, r);
  }

  for (int i = 0; i < ctx->n_cgroups; i++) {
    long fd = hearth_sys(SYS_openat, AT_FDCWD, (long)ctx->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) ChildFail(ctx, HEARTH_STEP_CGROUP_OPEN, fd, i);
    r = hearth_sys(SYS_write, fd, (long)"0", 1);
    hearth_sys(SYS_close, fd);
    if (r < 0) ChildFail(ctx, HEARTH_STEP_CGROUP_WRITE, r, i);
  }

  int step = HEARTH_STEP_NONE;
  int index = -1;
  int rr = hearth_setup_rootfs(ctx->rootfs, &step, &index);
  if (rr != 0) ChildFail(ctx, step, rr, index);

  /* fd 3 = socket (without CLOEXEC), 0/1/2 = /dev/null, nothing else survives execve. */
  if (ctx->socket_fd == 3) {
    r = hearth_sys(SYS_fcntl, 3, F_SETFD, 0);
  } else {
    r = hearth_sys(SYS_dup3, ctx->socket_fd, 3, 0);
  }
  if (r < 0) ChildFail(ctx, HEARTH_STEP_DUP_SOCKET, r);
  long null_fd = hearth_sys(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDWR);
  if (null_fd < 0) ChildFail(ctx, HEARTH_STEP_OPEN_DEV_NULL, null_fd);
  for (int fd = 0; fd < 3; fd++) {
    if (fd == null_fd) continue;
    r = hearth_sys(SYS_dup3, null_fd, fd, 0);
    if (r < 0) ChildFail(ctx, HEARTH_STEP_DUP_STDIO, r);
  }
  r = hearth_sys(SYS_close_range, 4, ~0U, 0);
  if (r != 0) ChildFail(ctx, HEARTH_STEP_CLOSE_FDS, r);

  struct rlimit core = {0, 0};
  r = hearth_sys(SYS_prlimit64, 0, RLIMIT_CORE, (long)&core, 0);
  if (r != 0) ChildFail(ctx, HEARTH_STEP_RLIMIT, r);
  if (ctx->nofile > 0) {
    struct rlimit nofile = {static_cast<rlim_t>(ctx->nofile), static_cast<rlim_t>(ctx->nofile)};
    r = hearth_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)&nofile, 0);
    if (r != 0) ChildFail(ctx, HEARTH_STEP_RLIMIT, r);
  }

  if (ctx->new_pid) {
    rr = hearth_enter_instance_userns(ctx->tmp_mb, ctx->uid, ctx->gid, ctx->hostname, ctx->seccomp_profile, ctx->userns,
                                      &step);
  } else {
    /* The zygote: keeps root and mounts no /proc or /tmp of its own, so that its children mount
       theirs on empty directories (no unmount, no RCU grace period on the fork path). */
    rr = 0;
    if (ctx->hostname[0] != '\0') {
      long hr = hearth_sys(SYS_sethostname, (long)ctx->hostname, hearth_strlen(ctx->hostname));
      if (hr != 0) {
        rr = static_cast<int>(hr);
        step = HEARTH_STEP_HOSTNAME;
      }
    }
  }
  if (rr != 0) ChildFail(ctx, step, rr);

  r = hearth_sys(SYS_execve, (long)ctx->argv[0], (long)ctx->argv, (long)ctx->envp);
  ChildFail(ctx, HEARTH_STEP_EXECVE, r);
}

struct BindSpec {
  std::string src;
  std::string dst;  // inside the sandbox
  unsigned attr;
};

}  // namespace

/*
 * spawn(opts) -> { pid, pidfd }
 * opts: { argv: string[], env: string[], rootDir: string, binds: {src,dst}[], symlinks: {target,path}[],
 *         cgroupProcs: string[], socketFd: number, newPid: boolean, uid, gid, tmpMb, hostname, nofile,
 *         netnsFd?: number, seccompProfile?: string, userns?: boolean }
 * userns (with newPid): the instance also gets a user namespace of its own, created after dropping to
 * uid/gid, its ids left unmapped until the daemon writes the maps at specialisation (sandbox.h).
 * seccompProfile: the instance's seccomp allow-list by name (seccomp-filter.cc; default "general").
 * netnsFd: an open network namespace fd (e.g. O_CLOEXEC, owned by the caller, never closed here); the
 * child setns()es into it instead of getting a new network namespace.
 */
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowArgError(env, "spawn(opts): opts must be an object");
    return env.Undefined();
  }
  Napi::Object opts = info[0].As<Napi::Object>();
  auto argv = ArgStringArray(opts.Get("argv"), "argv");
  if (!argv) return env.Undefined();
  if (argv->empty()) {
    ThrowArgError(env, "argv must not be empty");
    return env.Undefined();
  }
  auto envv = ArgStringArray(opts.Get("env"), "env");
  if (!envv) return env.Undefined();
  auto root_dir = ArgString(opts.Get("rootDir"), "rootDir");
  if (!root_dir) return env.Undefined();
  if (root_dir->empty() || (*root_dir)[0] != '/') {
    ThrowArgError(env, "rootDir must be an absolute path");
    return env.Undefined();
  }
  while (root_dir->size() > 1 && root_dir->back() == '/') root_dir->pop_back();
  auto cgroups = ArgStringArray(opts.Get("cgroupProcs"), "cgroupProcs");
  if (!cgroups) return env.Undefined();
  auto socket_fd = ArgInt(opts.Get("socketFd"), "socketFd");
  if (!socket_fd) return env.Undefined();
  auto new_pid = OptBool(opts, "newPid", true);
  if (!new_pid) return env.Undefined();
  auto userns = OptBool(opts, "userns", false);
  if (!userns) return env.Undefined();
  auto netns_fd = OptInt(opts, "netnsFd", -1);
  if (!netns_fd) return env.Undefined();
  if (!opts.Get("netnsFd").IsUndefined() && *netns_fd < 0) {
    ThrowArgError(env, "netnsFd must be a non-negative fd");
    return env.Undefined();
  }
  auto uid = OptInt(opts, "uid", 65534);
  auto gid = uid ? OptInt(opts, "gid", 65534) : std::nullopt;
  auto tmp_mb = gid ? OptInt(opts, "tmpMb", 64) : std::nullopt;
  auto nofile = tmp_mb ? OptInt(opts, "nofile", 1024) : std::nullopt;
  if (!nofile) return env.Undefined();
  std::string hostname = "hearth";
  if (!opts.Get("hostname").IsUndefined()) {
    auto h = ArgString(opts.Get("hostname"), "hostname");
    if (!h) return env.Undefined();
    hostname = *h;
  }
  int seccomp_profile = HEARTH_SECCOMP_GENERAL;
  if (!opts.Get("seccompProfile").IsUndefined()) {
    auto p = ArgString(opts.Get("seccompProfile"), "seccompProfile");
    if (!p) return env.Undefined();
    seccomp_profile = hearth_seccomp_profile(p->c_str());
    if (seccomp_profile < 0) {
      ThrowArgError(env, "seccompProfile: no profile named '" + *p + "'");
      return env.Undefined();
    }
  }
  if (*new_pid && (*uid <= 0 || *gid <= 0)) {
    ThrowArgError(env, "uid and gid of an instance must be non-zero");
    return env.Undefined();
  }

  auto bind_pairs = ArgStringPairs(opts.Get("binds"), "binds", "src", "dst");
  if (!bind_pairs || !ValidInnerPaths(env, *bind_pairs, "binds[].dst")) return env.Undefined();
  std::vector<BindSpec> binds;
  for (const auto &[src, dst] : *bind_pairs) {
    binds.push_back({src, dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
  }
  for (const char *dev : {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}) {
    binds.push_back({dev, dev, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC});
  }

  std::vector<std::pair<std::string, std::string>> links;  // target, inner path
  if (!opts.Get("symlinks").IsUndefined()) {
    auto pairs = ArgStringPairs(opts.Get("symlinks"), "symlinks", "target", "path");
    if (!pairs || !ValidInnerPaths(env, *pairs, "symlinks[].path")) return env.Undefined();
    links = std::move(*pairs);
  }
  links.emplace_back("/proc/self/fd", "/dev/fd");
  links.emplace_back("/proc/self/fd/0", "/dev/stdin");
  links.emplace_back("/proc/self/fd/1", "/dev/stdout");
  links.emplace_back("/proc/self/fd/2", "/dev/stderr");

  /* Mount points: directories (parents first), then empty files for file binds. */
  const std::string &root = *root_dir;
  std::vector<std::string> mkdirs;
  std::vector<std::string> mkfiles;
  std::set<std::string> seen;
  for (const char *d : {"/dev", "/proc", "/tmp", "/code"}) AddDirChain(root, d, true, mkdirs, seen);
  for (const BindSpec &b : binds) {
    struct stat st;
    if (stat(b.src.c_str(), &st) != 0) {
      ThrowSystemError(env, errno, "stat", "bind source for " + b.dst, b.src);
      return env.Undefined();
    }
    if (S_ISDIR(st.st_mode)) {
      AddDirChain(root, b.dst, true, mkdirs, seen);
    } else {
      AddDirChain(root, b.dst, false, mkdirs, seen);
      if (seen.insert(b.dst).second) mkfiles.push_back(root + b.dst);
    }
  }
  for (const auto &l : links) AddDirChain(root, l.second, false, mkdirs, seen);

  /* Flat C arrays for the child. The std::strings above outlive the child's use (until execve). */
  std::vector<std::string> bind_dsts;
  bind_dsts.reserve(binds.size());
  for (const BindSpec &b : binds) bind_dsts.push_back(root + b.dst);
  std::vector<hearth_bind> c_binds;
  for (size_t i = 0; i < binds.size(); i++)
    c_binds.push_back({binds[i].src.c_str(), bind_dsts[i].c_str(), binds[i].attr});
  std::vector<const char *> c_mkdirs, c_mkfiles, c_link_targets, c_link_paths, c_cgroups;
  std::vector<std::string> link_full;
  link_full.reserve(links.size());
  for (const auto &l : links) link_full.push_back(root + l.second);
  for (const auto &s : mkdirs) c_mkdirs.push_back(s.c_str());
  for (const auto &s : mkfiles) c_mkfiles.push_back(s.c_str());
  for (size_t i = 0; i < links.size(); i++) {
    c_link_targets.push_back(links[i].first.c_str());
    c_link_paths.push_back(link_full[i].c_str());
  }
  for (const auto &s : *cgroups) c_cgroups.push_back(s.c_str());
  std::vector<char *> c_argv, c_env;
  for (auto &s : *argv) c_argv.push_back(s.data());
  c_argv.push_back(nullptr);
  for (auto &s : *envv) c_env.push_back(s.data());
  c_env.push_back(nullptr);

  hearth_rootfs_spec spec;
  spec.root_dir = root.c_str();
  spec.mkdirs = c_mkdirs.data();
  spec.n_mkdirs = static_cast<int>(c_mkdirs.size());
  spec.mkfiles = c_mkfiles.data();
  spec.n_mkfiles = static_cast<int>(c_mkfiles.size());
  spec.binds = c_binds.data();
  spec.n_binds = static_cast<int>(c_binds.size());
  spec.link_targets = c_link_targets.data();
  spec.link_paths = c_link_paths.data();
  spec.n_links = static_cast<int>(c_link_paths.size());

  ChildContext ctx;
  ctx.rootfs = &spec;
  ctx.cgroup_procs = c_cgroups.data();
  ctx.n_cgroups = static_cast<int>(c_cgroups.size());
  ctx.socket_fd = *socket_fd;
  ctx.netns_fd = *netns_fd;
  ctx.new_pid = *new_pid;
  ctx.tmp_mb = *tmp_mb;
  ctx.seccomp_profile = seccomp_profile;
  ctx.userns = *userns && *new_pid ? 1 : 0;
  ctx.uid = static_cast<unsigned>(*uid);
  ctx.gid = static_cast<unsigned>(*gid);
  ctx.hostname = hostname.c_str();
  ctx.nofile = *nofile;
  ctx.argv = c_argv.data();
  ctx.envp = c_env.data();
  ctx.step = HEARTH_STEP_NONE;
  ctx.err = 0;
  ctx.index = -1;

  void *stack = mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    ThrowSystemError(env, errno, "mmap", "child stack");
    return env.Undefined();
  }
  int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
  if (*netns_fd < 0) flags |= CLONE_NEWNET;
  if (*new_pid) flags |= CLONE_NEWPID;
  int pidfd = -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = clone(ChildMain, static_cast<char *>(stack) + kChildStackSize, flags, &ctx, &pidfd, nullptr, nullptr);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kChildStackSize);
  if (pid < 0) {
    ThrowSystemError(env, clone_errno, "clone", "spawn sandbox");
    return env.Undefined();
  }
  if (ctx.step != HEARTH_STEP_NONE) {
    int status;
    while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
    }
    if (pidfd >= 0) close(pidfd);
    int step = ctx.step;
    int index = ctx.index;
    std::string path;
    if (step == HEARTH_STEP_MKDIR && index >= 0 && index < static_cast<int>(mkdirs.size()))
      path = mkdirs[index];
    else if (step == HEARTH_STEP_MKFILE && index >= 0 && index < static_cast<int>(mkfiles.size()))
      path = mkfiles[index];
    else if ((step == HEARTH_STEP_OPEN_TREE || step == HEARTH_STEP_MOUNT_SETATTR || step == HEARTH_STEP_MOVE_MOUNT) &&
             index >= 0 && index < static_cast<int>(binds.size()))
      path = binds[index].src + " -> " + binds[index].dst;
    else if (step == HEARTH_STEP_SYMLINK && index >= 0 && index < static_cast<int>(links.size()))
      path = links[index].second + " -> " + links[index].first;
    else if ((step == HEARTH_STEP_CGROUP_OPEN || step == HEARTH_STEP_CGROUP_WRITE) && index >= 0 &&
             index < static_cast<int>(cgroups->size()))
      path = (*cgroups)[index];
    else if (step == HEARTH_STEP_EXECVE)
      path = (*argv)[0];
    else if (step == HEARTH_STEP_SETNS_NET)
      path = "fd " + std::to_string(*netns_fd);
    else if (step == HEARTH_STEP_ROOT_TMPFS || step == HEARTH_STEP_ROOT_READONLY || step == HEARTH_STEP_PIVOT_ROOT)
      path = root;
    ThrowSystemError(env, ctx.err, "spawn", hearth_step_name(step), path);
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("pidfd", Napi::Number::New(env, pidfd));
  return result;
}

}  // namespace hearth
