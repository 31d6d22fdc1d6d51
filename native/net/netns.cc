// Work inside another network namespace without moving the calling thread: a child made with
// clone(CLONE_VM|CLONE_VFORK|CLONE_FILES) enters or creates the namespace, opens what is asked
// (the namespace file, a socket: sockets stay bound to the namespace they were made in) into the
// shared fd table, and exits; the parent is suspended until then.
// Man pages: clone(2), setns(2), unshare(2), network_namespaces(7), socket(2), open(2),
// waitpid(2), pthread_sigmask(3), proc(5).
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "hearth/eintr.h"

namespace hearth_net {

namespace {

// Runs in the child: shares memory and fds with the suspended parent. Only raw syscalls; no
// allocation, no locks; errors are reported through the task struct.
int childMain(void *arg) {
  NsTask *t = static_cast<NsTask *>(arg);
  auto fail = [t](const char *call) {
    t->err = errno;
    t->failedCall = call;
    syscall(SYS_exit, 1);
    return 1;
  };
  if (t->enterFd >= 0 && setns(t->enterFd, CLONE_NEWNET) < 0) return fail("setns");
  if (t->unshareNet && unshare(CLONE_NEWNET) < 0) return fail("unshare");
  if (t->openNs) {
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("open");
    t->nsFd = fd;
  }
  if (t->openRtnl) {
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return fail("socket");
    t->sockFd = s;
  } else if (t->sockDomain != 0) {
    int s = socket(t->sockDomain, t->sockType | SOCK_CLOEXEC, 0);
    if (s < 0) return fail("socket");
    t->sockFd = s;
  }
  if (t->writePath) {
    int fd = open(t->writePath, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && t->writeIgnoreMissing) syscall(SYS_exit, 0);
    if (fd < 0) return fail("open");
    size_t len = strlen(t->writeValue);
    ssize_t n = write(fd, t->writeValue, len);
    if (n < 0 || static_cast<size_t>(n) != len) {
      if (n >= 0) errno = EIO;
      int e = errno;
      close(fd);
      errno = e;
      return fail("write");
    }
    close(fd);
  }
  syscall(SYS_exit, 0);
  return 0;
}

}  // namespace

int runNsTask(NsTask &task) {
  // The child runs on this buffer while we are suspended (CLONE_VFORK).
  alignas(64) char stack[32 * 1024];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // no handler may run in the child
  pid_t pid = clone(childMain, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &task);
  int cloneErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    task.failedCall = "clone";
    task.err = cloneErr;
    return -cloneErr;
  }
  int status = 0;
  hearth::RetryEintr([&] { return waitpid(pid, &status, 0); });
  if (task.err != 0) {
    // Undo partial outputs so nothing leaks on failure.
    if (task.nsFd >= 0) close(task.nsFd), task.nsFd = -1;
    if (task.sockFd >= 0) close(task.sockFd), task.sockFd = -1;
    return -task.err;
  }
  return 0;
}

int rtnlIn(int nsFd, int *sockFd, const char **failedCall) {
  if (nsFd < 0) {
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) {
      *failedCall = "socket";
      return -errno;
    }
    *sockFd = s;
    return 0;
  }
  NsTask t;
  t.enterFd = nsFd;
  t.openRtnl = true;
  int rc = runNsTask(t);
  if (rc < 0) {
    *failedCall = t.failedCall;
    return rc;
  }
  *sockFd = t.sockFd;
  return 0;
}

}  // namespace hearth_net
