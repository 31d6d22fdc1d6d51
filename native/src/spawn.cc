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

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hearth/sandbox.h"
#include "inner-paths.h"
#include "js-args.h"
#include "raw-syscall.h"
#include "spawn-child.h"
#include "system-error.h"

namespace hearth {
namespace {

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

constexpr size_t kChildStackSize = 256 * 1024;

struct BindSpec {
  std::string src;
  std::string dst;  // inside the sandbox
  unsigned attr;
};

/*
 * One spawn: everything the child reads (owned here, so it outlives the child's use until execve),
 * built on the JS thread by Prepare(); Run() makes the clone and may run on any thread (no N-API,
 * no allocation); Settle() turns the outcome into { pid, pidfd } or a system error on the JS thread.
 */
class SpawnJob {
 public:
  /* Reads and checks opts; nullptr with a pending JS exception when they are wrong. */
  static std::unique_ptr<SpawnJob> Prepare(const Napi::CallbackInfo &info);

  void Run() {
    void *stack =
        mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      mmap_errno_ = errno;
      return;
    }
    int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (ctx_.netns_fd < 0) flags |= CLONE_NEWNET;
    if (ctx_.new_pid) flags |= CLONE_NEWPID;
    /* The child starts with every signal blocked (it resets the handlers, then unblocks); only
       this thread's mask changes, and only this thread sleeps until the child has exec'd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_ = clone(ChildMain, static_cast<char *>(stack) + kChildStackSize, flags, &ctx_, &pidfd_, nullptr, nullptr);
    clone_errno_ = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    munmap(stack, kChildStackSize);
    if (pid_ >= 0 && ctx_.step != HEARTH_STEP_NONE) {
      int status;
      while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
      }
      if (pidfd_ >= 0) close(pidfd_);
      pidfd_ = -1;
    }
  }

  bool Failed() const { return mmap_errno_ != 0 || pid_ < 0 || ctx_.step != HEARTH_STEP_NONE; }

  /* The error of a failed Run(), naming the step and path. */
  Napi::Error Error(Napi::Env env) const {
    if (mmap_errno_ != 0) return SystemError(env, mmap_errno_, "mmap", "child stack");
    if (pid_ < 0) return SystemError(env, clone_errno_, "clone", "spawn sandbox");
    int step = ctx_.step;
    int index = ctx_.index;
    std::string path;
    if (step == HEARTH_STEP_MKDIR && index >= 0 && index < static_cast<int>(mkdirs_.size()))
      path = mkdirs_[index];
    else if (step == HEARTH_STEP_MKFILE && index >= 0 && index < static_cast<int>(mkfiles_.size()))
      path = mkfiles_[index];
    else if ((step == HEARTH_STEP_OPEN_TREE || step == HEARTH_STEP_MOUNT_SETATTR || step == HEARTH_STEP_MOVE_MOUNT) &&
             index >= 0 && index < static_cast<int>(binds_.size()))
      path = binds_[index].src + " -> " + binds_[index].dst;
    else if (step == HEARTH_STEP_SYMLINK && index >= 0 && index < static_cast<int>(links_.size()))
      path = links_[index].second + " -> " + links_[index].first;
    else if ((step == HEARTH_STEP_CGROUP_OPEN || step == HEARTH_STEP_CGROUP_WRITE) && index >= 0 &&
             index < static_cast<int>(cgroups_.size()))
      path = cgroups_[index];
    else if (step == HEARTH_STEP_EXECVE)
      path = argv_[0];
    else if (step == HEARTH_STEP_SETNS_NET)
      path = "fd " + std::to_string(ctx_.netns_fd);
    else if (step == HEARTH_STEP_ROOT_TMPFS || step == HEARTH_STEP_ROOT_READONLY || step == HEARTH_STEP_PIVOT_ROOT)
      path = root_;
    return SystemError(env, ctx_.err, "spawn", hearth_step_name(step), path);
  }

  Napi::Object Result(Napi::Env env) const {
    Napi::Object result = Napi::Object::New(env);
    result.Set("pid", Napi::Number::New(env, pid_));
    result.Set("pidfd", Napi::Number::New(env, pidfd_));
    return result;
  }

 private:
  SpawnJob() = default;
  bool Build(Napi::Env env, Napi::Object opts);

  std::vector<std::string> argv_, envv_, cgroups_, mkdirs_, mkfiles_, bind_dsts_, link_full_;
  std::string root_, hostname_ = "hearth";
  std::vector<BindSpec> binds_;
  std::vector<std::pair<std::string, std::string>> links_;  // target, inner path
  std::vector<hearth_bind> c_binds_;
  std::vector<const char *> c_mkdirs_, c_mkfiles_, c_link_targets_, c_link_paths_, c_cgroups_;
  std::vector<char *> c_argv_, c_env_;
  hearth_rootfs_spec spec_{};
  ChildContext ctx_{};
  int pid_ = -1;
  int pidfd_ = -1;
  int clone_errno_ = 0;
  int mmap_errno_ = 0;
};

std::unique_ptr<SpawnJob> SpawnJob::Prepare(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowArgError(env, "spawn(opts): opts must be an object");
    return nullptr;
  }
  std::unique_ptr<SpawnJob> job(new SpawnJob());
  if (!job->Build(env, info[0].As<Napi::Object>())) return nullptr;
  return job;
}

bool SpawnJob::Build(Napi::Env env, Napi::Object opts) {
  auto argv = ArgStringArray(opts.Get("argv"), "argv");
  if (!argv) return false;
  if (argv->empty()) {
    ThrowArgError(env, "argv must not be empty");
    return false;
  }
  argv_ = std::move(*argv);
  auto envv = ArgStringArray(opts.Get("env"), "env");
  if (!envv) return false;
  envv_ = std::move(*envv);
  auto root_dir = ArgString(opts.Get("rootDir"), "rootDir");
  if (!root_dir) return false;
  if (root_dir->empty() || (*root_dir)[0] != '/') {
    ThrowArgError(env, "rootDir must be an absolute path");
    return false;
  }
  while (root_dir->size() > 1 && root_dir->back() == '/') root_dir->pop_back();
  root_ = std::move(*root_dir);
  auto cgroups = ArgStringArray(opts.Get("cgroupProcs"), "cgroupProcs");
  if (!cgroups) return false;
  cgroups_ = std::move(*cgroups);
  auto socket_fd = ArgInt(opts.Get("socketFd"), "socketFd");
  if (!socket_fd) return false;
  auto new_pid = OptBool(opts, "newPid", true);
  if (!new_pid) return false;
  auto userns = OptBool(opts, "userns", false);
  if (!userns) return false;
  auto netns_fd = OptInt(opts, "netnsFd", -1);
  if (!netns_fd) return false;
  if (!opts.Get("netnsFd").IsUndefined() && *netns_fd < 0) {
    ThrowArgError(env, "netnsFd must be a non-negative fd");
    return false;
  }
  auto uid = OptInt(opts, "uid", 65534);
  auto gid = uid ? OptInt(opts, "gid", 65534) : std::nullopt;
  auto tmp_mb = gid ? OptInt(opts, "tmpMb", 64) : std::nullopt;
  auto nofile = tmp_mb ? OptInt(opts, "nofile", 1024) : std::nullopt;
  if (!nofile) return false;
  if (!opts.Get("hostname").IsUndefined()) {
    auto h = ArgString(opts.Get("hostname"), "hostname");
    if (!h) return false;
    hostname_ = *h;
  }
  int seccomp_profile = HEARTH_SECCOMP_GENERAL;
  if (!opts.Get("seccompProfile").IsUndefined()) {
    auto p = ArgString(opts.Get("seccompProfile"), "seccompProfile");
    if (!p) return false;
    seccomp_profile = hearth_seccomp_profile(p->c_str());
    if (seccomp_profile < 0) {
      ThrowArgError(env, "seccompProfile: no profile named '" + *p + "'");
      return false;
    }
  }
  if (*new_pid && (*uid <= 0 || *gid <= 0)) {
    ThrowArgError(env, "uid and gid of an instance must be non-zero");
    return false;
  }

  auto bind_pairs = ArgStringPairs(opts.Get("binds"), "binds", "src", "dst");
  if (!bind_pairs || !ValidInnerPaths(env, *bind_pairs, "binds[].dst")) return false;
  for (const auto &[src, dst] : *bind_pairs) {
    binds_.push_back({src, dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
  }
  for (const char *dev : {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}) {
    binds_.push_back({dev, dev, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC});
  }

  if (!opts.Get("symlinks").IsUndefined()) {
    auto pairs = ArgStringPairs(opts.Get("symlinks"), "symlinks", "target", "path");
    if (!pairs || !ValidInnerPaths(env, *pairs, "symlinks[].path")) return false;
    links_ = std::move(*pairs);
  }
  links_.emplace_back("/proc/self/fd", "/dev/fd");
  links_.emplace_back("/proc/self/fd/0", "/dev/stdin");
  links_.emplace_back("/proc/self/fd/1", "/dev/stdout");
  links_.emplace_back("/proc/self/fd/2", "/dev/stderr");

  /* Mount points: directories (parents first), then empty files for file binds. */
  std::set<std::string> seen;
  for (const char *d : {"/dev", "/proc", "/tmp", "/code"}) AddDirChain(root_, d, true, mkdirs_, seen);
  for (const BindSpec &b : binds_) {
    struct stat st;
    if (stat(b.src.c_str(), &st) != 0) {
      ThrowSystemError(env, errno, "stat", "bind source for " + b.dst, b.src);
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      AddDirChain(root_, b.dst, true, mkdirs_, seen);
    } else {
      AddDirChain(root_, b.dst, false, mkdirs_, seen);
      if (seen.insert(b.dst).second) mkfiles_.push_back(root_ + b.dst);
    }
  }
  for (const auto &l : links_) AddDirChain(root_, l.second, false, mkdirs_, seen);

  /* Flat C arrays for the child, pointing into the strings above (never resized from here on). */
  bind_dsts_.reserve(binds_.size());
  for (const BindSpec &b : binds_) bind_dsts_.push_back(root_ + b.dst);
  for (size_t i = 0; i < binds_.size(); i++)
    c_binds_.push_back({binds_[i].src.c_str(), bind_dsts_[i].c_str(), binds_[i].attr});
  link_full_.reserve(links_.size());
  for (const auto &l : links_) link_full_.push_back(root_ + l.second);
  for (const auto &s : mkdirs_) c_mkdirs_.push_back(s.c_str());
  for (const auto &s : mkfiles_) c_mkfiles_.push_back(s.c_str());
  for (size_t i = 0; i < links_.size(); i++) {
    c_link_targets_.push_back(links_[i].first.c_str());
    c_link_paths_.push_back(link_full_[i].c_str());
  }
  for (const auto &s : cgroups_) c_cgroups_.push_back(s.c_str());
  for (auto &s : argv_) c_argv_.push_back(s.data());
  c_argv_.push_back(nullptr);
  for (auto &s : envv_) c_env_.push_back(s.data());
  c_env_.push_back(nullptr);

  spec_.root_dir = root_.c_str();
  spec_.mkdirs = c_mkdirs_.data();
  spec_.n_mkdirs = static_cast<int>(c_mkdirs_.size());
  spec_.mkfiles = c_mkfiles_.data();
  spec_.n_mkfiles = static_cast<int>(c_mkfiles_.size());
  spec_.binds = c_binds_.data();
  spec_.n_binds = static_cast<int>(c_binds_.size());
  spec_.link_targets = c_link_targets_.data();
  spec_.link_paths = c_link_paths_.data();
  spec_.n_links = static_cast<int>(c_link_paths_.size());

  ctx_.rootfs = &spec_;
  ctx_.cgroup_procs = c_cgroups_.data();
  ctx_.n_cgroups = static_cast<int>(c_cgroups_.size());
  ctx_.socket_fd = *socket_fd;
  ctx_.netns_fd = *netns_fd;
  ctx_.new_pid = *new_pid;
  ctx_.tmp_mb = *tmp_mb;
  ctx_.seccomp_profile = seccomp_profile;
  ctx_.userns = *userns && *new_pid ? 1 : 0;
  ctx_.uid = static_cast<unsigned>(*uid);
  ctx_.gid = static_cast<unsigned>(*gid);
  ctx_.hostname = hostname_.c_str();
  ctx_.nofile = *nofile;
  ctx_.argv = c_argv_.data();
  ctx_.envp = c_env_.data();
  ctx_.step = HEARTH_STEP_NONE;
  ctx_.err = 0;
  ctx_.index = -1;
  return true;
}

/* Runs a SpawnJob on the libuv pool and settles a promise with its outcome. */
class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, std::unique_ptr<SpawnJob> job)
      : Napi::AsyncWorker(env), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

 private:
  void Execute() override { job_->Run(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (job_->Failed()) {
      deferred_.Reject(job_->Error(env).Value());
    } else {
      deferred_.Resolve(job_->Result(env));
    }
  }
  std::unique_ptr<SpawnJob> job_;
  Napi::Promise::Deferred deferred_;
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
 * The calling thread sleeps until the child has exec'd (a few ms: the child builds its root first).
 */
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::unique_ptr<SpawnJob> job = SpawnJob::Prepare(info);
  if (!job) return env.Undefined();
  job->Run();
  if (job->Failed()) {
    job->Error(env).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return job->Result(env);
}

/*
 * spawnAsync(opts) -> Promise<{ pid, pidfd }>: spawn() with the clone made on the libuv thread
 * pool, so that the event loop runs on while the child builds its root (the clone's CLONE_VFORK
 * sleep is that pool thread's). Bad opts throw at once, as with spawn(); a failure of the child
 * rejects with the same error spawn() would throw. The fds named in opts must stay open until the
 * promise settles.
 */
Napi::Value SpawnAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::unique_ptr<SpawnJob> job = SpawnJob::Prepare(info);
  if (!job) return env.Undefined();
  return (new SpawnWorker(env, std::move(job)))->Start();
}

}  // namespace hearth
