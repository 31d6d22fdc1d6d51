/*
 * The child side of spawn(): signals reset, the prepared network namespace joined, the cgroups
 * joined, the root built (rootfs.cc), fds and rlimits arranged, the instance entered
 * (sandbox-enter.cc), then execve(). Raw system calls only: the child shares the parent's memory.
 *
 * Man pages: clone(2), setns(2), cgroups(7), sigaction(2), sigprocmask(2), dup2(2), close_range(2),
 * prlimit(2), execve(2).
 */
#include "spawn-child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include "raw-syscall.h"

namespace hearth {
namespace {

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

}  // namespace

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

}  // namespace hearth
