// Network namespace handles held by file descriptor, and work done "inside" a namespace by a
// short-lived CLONE_VM|CLONE_VFORK|CLONE_FILES child (the calling thread never changes namespace).
// Man pages: clone(2), setns(2), unshare(2), namespaces(7), network_namespaces(7), mount(2), umount(2).
#pragma once

#include <string>

namespace hearth_net {

/** What the child does; outputs land in the shared fd table and memory. */
struct NsTask {
  int enterFd = -1;         // setns() into this netns first (-1: stay)
  bool unshareNet = false;  // then make a new netns
  bool openNs = false;      // then open /proc/self/ns/net -> nsFd
  bool openRtnl = false;    // then open a NETLINK_ROUTE socket -> sockFd
  int sockDomain = 0;       // or any socket(domain, type) -> sockFd (when openRtnl is false)
  int sockType = 0;
  const char *writePath = nullptr;  // then write writeValue to this file (e.g. /proc/sys/...)
  const char *writeValue = nullptr;
  bool writeIgnoreMissing = false;  // a missing writePath (ENOENT) is not an error
  // outputs
  int nsFd = -1;
  int sockFd = -1;
  int err = 0;  // errno of the failed step (0 = success)
  const char *failedCall = nullptr;
};

/** Runs task in a child; returns 0 or -errno (task.failedCall names the syscall). Close-on-exec fds. */
int runNsTask(NsTask &task);

/** Opens a NETLINK_ROUTE socket in the netns held by nsFd (-1: the caller's). */
int rtnlIn(int nsFd, int *sockFd, const char **failedCall);

}  // namespace hearth_net
