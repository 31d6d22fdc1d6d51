/*
 * mountCode(): attach a read-only, nosuid, nodev copy of a host directory at a path inside the
 * mount namespace of a running sandbox, with the new mount API, never `mount --bind` + remount.
 *
 * The parent clones the tree (open_tree OPEN_TREE_CLONE) and sets its attributes (mount_setattr);
 * a short-lived child sharing our memory (CLONE_VM|CLONE_VFORK), with its own fs_struct, enters the
 * sandbox's mount namespace (setns) and moves the detached tree onto the target (move_mount).
 *
 * Man pages: open_tree(2), mount_setattr(2), move_mount(2), setns(2), pidfd_open(2), clone(2),
 * mount_namespaces(7), waitpid(2).
 */
#include <fcntl.h>
#include <napi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <mutex>
#include <string>

#include "js-args.h"
#include "raw-syscall.h"
#include "system-error.h"

namespace hearth {
namespace {

struct MountChild {
  int ns_fd;
  int tree_fd;
  const char *target;
  volatile int err;
  volatile int step;  // 1 = setns, 2 = move_mount
};

int MountChildMain(void *arg) {
  MountChild *c = static_cast<MountChild *>(arg);
  long r = hearth_sys(SYS_setns, c->ns_fd, CLONE_NEWNS);
  if (r != 0) {
    c->err = static_cast<int>(-r);
    c->step = 1;
    hearth_sys_exit(1);
  }
  r = hearth_sys(SYS_move_mount, c->tree_fd, (long)"", AT_FDCWD, (long)c->target, MOVE_MOUNT_F_EMPTY_PATH);
  if (r != 0) {
    c->err = static_cast<int>(-r);
    c->step = 2;
    hearth_sys_exit(1);
  }
  hearth_sys_exit(0);
}

std::mutex g_stack_mutex;
alignas(64) char g_stack[64 * 1024];

}  // namespace

/* mountCode(pid, srcDir, target, pidfd = -1): pidfd (when >= 0) names the namespace without a pid race. */
Napi::Value MountCode(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  const int pid = a.Get(0, ArgInt, "pid");
  const std::string src = a.Get(1, ArgString, "srcDir");
  const std::string target = a.Get(2, ArgString, "target");
  const int pidfd = a.GetOr(3, ArgInt, "pidfd", -1);
  if (!a.Require(!target.empty() && target[0] == '/', "target must be an absolute path")) return env.Undefined();

  long tree =
      hearth_sys(SYS_open_tree, AT_FDCWD, (long)src.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) {
    ThrowSystemError(env, static_cast<int>(-tree), "open_tree", "", src);
    return env.Undefined();
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.propagation = MS_PRIVATE;
  long r = hearth_sys(SYS_mount_setattr, tree, (long)"", AT_EMPTY_PATH | AT_RECURSIVE, (long)&attr, sizeof attr);
  if (r != 0) {
    close(static_cast<int>(tree));
    ThrowSystemError(env, static_cast<int>(-r), "mount_setattr", "", src);
    return env.Undefined();
  }
  int ns_fd = pidfd;
  if (pidfd < 0) {
    std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/mnt";
    ns_fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) {
      int e = errno;
      close(static_cast<int>(tree));
      ThrowSystemError(env, e, "open", "mount namespace", ns_path);
      return env.Undefined();
    }
  }

  MountChild child = {ns_fd, static_cast<int>(tree), target.c_str(), 0, 0};
  int child_pid;
  int clone_errno = 0;
  {
    std::lock_guard<std::mutex> lock(g_stack_mutex);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* exit signal 0: no SIGCHLD reaches Node; reaped below with __WALL */
    child_pid = clone(MountChildMain, g_stack + sizeof g_stack, CLONE_VM | CLONE_VFORK, &child);
    clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  if (child_pid > 0) {
    int status;
    while (waitpid(child_pid, &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  if (pidfd < 0) close(ns_fd);
  close(static_cast<int>(tree));
  if (child_pid < 0) {
    ThrowSystemError(env, clone_errno, "clone", "mount helper");
    return env.Undefined();
  }
  if (child.step != 0) {
    ThrowSystemError(env, child.err, child.step == 1 ? "setns" : "move_mount", "", child.step == 1 ? "" : target);
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace hearth
