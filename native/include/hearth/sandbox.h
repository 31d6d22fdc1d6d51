/*
 * Sandbox entry: the part of building a sandbox that runs inside the new process, after the fork.
 *
 * Everything declared here is async-signal-safe: raw system calls only, no allocation, no locks,
 * no errno (results are 0 or -errno). It runs in the vfork()-like child of the multithreaded Node
 * daemon and in the fork()ed grandchild of the single-threaded Python zygote, which loads the same
 * code as a shared library (build/Release/hearth_sandbox.so) through ctypes.
 */
#ifndef HEARTH_SANDBOX_H
#define HEARTH_SANDBOX_H

#ifdef __cplusplus
extern "C" {
#endif

#define HEARTH_EXPORT __attribute__((visibility("default")))

/* The step that failed, reported with its errno (see hearth_step_name). */
enum hearth_step {
  HEARTH_STEP_NONE = 0,
  HEARTH_STEP_SIGNALS,
  HEARTH_STEP_CGROUP_OPEN,
  HEARTH_STEP_CGROUP_WRITE,
  HEARTH_STEP_MAKE_PRIVATE,
  HEARTH_STEP_ROOT_TMPFS,
  HEARTH_STEP_MKDIR,
  HEARTH_STEP_MKFILE,
  HEARTH_STEP_OPEN_TREE,
  HEARTH_STEP_MOUNT_SETATTR,
  HEARTH_STEP_MOVE_MOUNT,
  HEARTH_STEP_SYMLINK,
  HEARTH_STEP_ROOT_READONLY,
  HEARTH_STEP_CHDIR,
  HEARTH_STEP_PIVOT_ROOT,
  HEARTH_STEP_UMOUNT_OLD_ROOT,
  HEARTH_STEP_DUP_SOCKET,
  HEARTH_STEP_OPEN_DEV_NULL,
  HEARTH_STEP_DUP_STDIO,
  HEARTH_STEP_CLOSE_FDS,
  HEARTH_STEP_RLIMIT,
  HEARTH_STEP_MOUNT_PROC,
  HEARTH_STEP_MOUNT_TMP,
  HEARTH_STEP_LOOPBACK,
  HEARTH_STEP_HOSTNAME,
  HEARTH_STEP_CAPBSET,
  HEARTH_STEP_AMBIENT,
  HEARTH_STEP_SETGROUPS,
  HEARTH_STEP_SETRESGID,
  HEARTH_STEP_SETRESUID,
  HEARTH_STEP_CAPSET,
  HEARTH_STEP_DUMPABLE,
  HEARTH_STEP_NO_NEW_PRIVS,
  HEARTH_STEP_SECCOMP,
  HEARTH_STEP_EXECVE,
  HEARTH_STEP_SETNS_NET,   /* joining a prepared network namespace (spawn with netnsFd) */
  HEARTH_STEP_USERNS,      /* unshare(CLONE_NEWUSER) of an instance with a user namespace */
  HEARTH_STEP_USERNS_CAPS, /* keeping CAP_SETUID/CAP_SETGID of that user namespace until specialisation */
  HEARTH_STEP_COUNT
};

/* Human-readable name of a step ("pivot_root", "mount /proc", ...). Never NULL. */
HEARTH_EXPORT const char *hearth_step_name(int step);

/*
 * Enter an instance sandbox. The caller is root, PID 1 of a fresh PID namespace, in fresh
 * mount/ipc/uts namespaces whose root is already the (read-only) sandbox root, and in a fresh network
 * namespace or a prepared one it joined with setns() before. Mounts a new
 * /proc (nosuid,nodev,noexec) and a /tmp tmpfs of tmp_mb MiB (mode 1777, nosuid,nodev), brings `lo`
 * up (unless it is up already), sets the hostname, then drops to uid/gid (both non-zero) with no capabilities (bounding
 * set emptied), no_new_privs and the seccomp filter. Returns 0 or -errno; hearth_last_step() then names the failed
 * step.
 */
HEARTH_EXPORT int hearth_enter_instance(int tmp_mb, unsigned uid, unsigned gid, const char *hostname);

/* The step at which the last hearth_enter_instance() in this process failed (HEARTH_STEP_NONE if none). */
HEARTH_EXPORT int hearth_last_step(void);

/* Like hearth_enter_instance, but stores the failed step in *step instead of process memory. */
HEARTH_EXPORT int hearth_enter_instance_ex(int tmp_mb, unsigned uid, unsigned gid, const char *hostname, int *step);

/* Mount a fresh /proc and a /tmp tmpfs (what the zygote needs, without dropping privileges). */
HEARTH_EXPORT int hearth_mount_proc_tmp(int tmp_mb, int *step);

/* Like hearth_enter_instance_ex, with the seccomp filter of `seccomp_profile` (< 0: the process default). */
HEARTH_EXPORT int hearth_enter_instance_profile(int tmp_mb, unsigned uid, unsigned gid, const char *hostname,
                                                int seccomp_profile, int *step);

/*
 * Like hearth_enter_instance_profile; with `userns` non-zero the instance also gets a user namespace
 * of its own, created last, after dropping to uid/gid (the "pool" ids: unprivileged, used by no host
 * process), so the mount, PID, IPC, UTS and network namespaces stay owned by the host's user
 * namespace. No uid_map or gid_map is written: the ids stay unmapped (the overflow id inside) until
 * the daemon maps root inside to the function's host uid at specialisation
 * (/proc/PID/{setgroups,uid_map,gid_map}); the runtime then calls setresgid/setresuid(0) and drops
 * what is left with hearth_drop_capabilities(). Until then it holds CAP_SETUID, CAP_SETGID and
 * CAP_SETPCAP of its own user namespace only (bounding, permitted, effective, inheritable and ambient
 * sets; the ambient set carries them across execve), which allow nothing while nothing is mapped.
 */
HEARTH_EXPORT int hearth_enter_instance_userns(int tmp_mb, unsigned uid, unsigned gid, const char *hostname,
                                               int seccomp_profile, int userns, int *step);

/*
 * The calling thread's capability sets (bounding, needing CAP_SETPCAP; permitted, effective,
 * inheritable, ambient) emptied, and the process made dumpable again after its uid change (so that
 * /proc/self/fd stays its own). 0 or -errno.
 */
HEARTH_EXPORT int hearth_drop_capabilities(void);

/* The seccomp profiles (allow-lists, seccomp-filter.cc): one per runtime kind, `general` for any program. */
enum hearth_seccomp_profile_id {
  HEARTH_SECCOMP_GENERAL = 0,
  HEARTH_SECCOMP_NODE = 1,
  HEARTH_SECCOMP_PYTHON = 2,
  HEARTH_SECCOMP_PROFILE_COUNT
};

/* The profile called `name` ("general", "node", "python"), or -1. */
HEARTH_EXPORT int hearth_seccomp_profile(const char *name);

/* The profile hearth_install_seccomp() and hearth_enter_instance() use in this process (default general). */
HEARTH_EXPORT int hearth_set_seccomp_profile(int profile);

/* Install a profile's filter (needs no_new_privs or CAP_SYS_ADMIN). Returns 0 or -errno. */
HEARTH_EXPORT int hearth_install_seccomp_profile(int profile);

/* Install the process default profile's filter. */
HEARTH_EXPORT int hearth_install_seccomp(void);

/* One read-only bind of the root filesystem. `dst` is the full path under the new root dir. */
struct hearth_bind {
  const char *src;
  const char *dst;
  unsigned attr_set; /* MOUNT_ATTR_* */
};

/* Everything hearth_setup_rootfs needs, prepared (allocated) by the parent before the fork. */
struct hearth_rootfs_spec {
  const char *root_dir;      /* an existing empty directory; a tmpfs is mounted on it */
  const char *const *mkdirs; /* full paths under root_dir, parents first */
  int n_mkdirs;
  const char *const *mkfiles; /* full paths of empty files (mount points of file binds) */
  int n_mkfiles;
  const struct hearth_bind *binds;
  int n_binds;
  const char *const *link_targets; /* symlink contents, e.g. "usr/bin" */
  const char *const *link_paths;   /* full paths under root_dir */
  int n_links;
};

/*
 * In a fresh mount namespace: make / rprivate, mount a tmpfs on root_dir, create the mount points,
 * bind each source read-only (new mount API), create the symlinks, make the new root read-only,
 * pivot_root into it and detach the old root. On failure returns -errno with *step and *index
 * (which mkdir/bind/link) set.
 */
HEARTH_EXPORT int hearth_setup_rootfs(const struct hearth_rootfs_spec *spec, int *step, int *index);

#ifdef __cplusplus
}
#endif

#endif
