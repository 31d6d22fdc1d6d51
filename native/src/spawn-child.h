/*
 * The child side of spawn() (spawn.cc): what the cloned child runs between clone() and execve().
 * It shares the parent's memory (CLONE_VM|CLONE_VFORK), so it makes raw system calls only (no
 * libc state, no allocation) and reports a failure (step, errno, index) in its ChildContext.
 */
#ifndef HEARTH_SPAWN_CHILD_H
#define HEARTH_SPAWN_CHILD_H

#include "hearth/sandbox.h"

namespace hearth {

/* Everything the child reads, prepared by the parent; the last three fields are the child's report. */
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

/* The child's entry (clone(2)'s fn): never returns; execve()s or exits 127 with the report filled in. */
int ChildMain(void *arg);

}  // namespace hearth

#endif
