/*
 * Sandbox entry, run by the new process itself: rootfs assembly (spawn child) and instance entry
 * (spawn child and zygote grandchild). Raw system calls only, no allocation (see sandbox.h).
 *
 * Man pages: mount(2), umount(2), open_tree(2), mount_setattr(2), move_mount(2), pivot_root(2),
 * proc(5), tmpfs(5), netdevice(7) (SIOCSIFFLAGS), sethostname(2), prctl(2) (PR_CAPBSET_DROP,
 * PR_CAP_AMBIENT, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE), setgroups(2), setresuid(2), capset(2),
 * capabilities(7). The seccomp filters are in seccomp-filter.cc.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "hearth/sandbox.h"
#include "raw-syscall.h"

namespace {

int g_last_step = HEARTH_STEP_NONE;

const char *const kStepNames[HEARTH_STEP_COUNT] = {
    "none",
    "reset signals",
    "open cgroup.procs",
    "join cgroup",
    "make / private",
    "mount root tmpfs",
    "mkdir",
    "create mount point",
    "open_tree",
    "mount_setattr",
    "move_mount",
    "symlink",
    "make root read-only",
    "chdir",
    "pivot_root",
    "detach old root",
    "dup socket to fd 3",
    "open /dev/null",
    "dup /dev/null to stdio",
    "close inherited fds",
    "setrlimit",
    "mount /proc",
    "mount /tmp",
    "bring lo up",
    "sethostname",
    "drop capability bounding set",
    "clear ambient capabilities",
    "setgroups",
    "setresgid",
    "setresuid",
    "capset",
    "set dumpable",
    "set no_new_privs",
    "install seccomp filter",
    "execve",
    "setns network namespace",
    "unshare user namespace",
    "keep setuid/setgid in the user namespace",
};

/* Writes the decimal form of v at out (no terminator); returns the number of chars. */
int format_uint(unsigned v, char *out) {
  char tmp[12];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

int copy_str(char *out, const char *s) {
  int n = 0;
  while (s[n] != '\0') {
    out[n] = s[n];
    n++;
  }
  return n;
}

int fail(int *step, int which, long err) {
  *step = which;
  return static_cast<int>(err);
}

/* Detach whatever is mounted at path (the zygote's /proc or /tmp), ignoring "not mounted". */
void detach_if_mounted(const char *path) {
  for (int i = 0; i < 4; i++) {
    if (hearth_sys(SYS_umount2, (long)path, MNT_DETACH) != 0) return;
  }
}

int bring_lo_up() {
  long fd = hearth_sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return static_cast<int>(fd);
  struct ifreq ifr;
  char *p = reinterpret_cast<char *>(&ifr);
  for (unsigned i = 0; i < sizeof ifr; i++) p[i] = 0;
  ifr.ifr_name[0] = 'l';
  ifr.ifr_name[1] = 'o';
  long r = hearth_sys(SYS_ioctl, fd, SIOCGIFFLAGS, (long)&ifr);
  /* a prepared (joined) namespace may have lo configured and up already: leave it as it is */
  if (r == 0 && (ifr.ifr_flags & IFF_UP) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    r = hearth_sys(SYS_ioctl, fd, SIOCSIFFLAGS, (long)&ifr);
  }
  hearth_sys(SYS_close, fd);
  return static_cast<int>(r);
}

}  // namespace

extern "C" {

const char *hearth_step_name(int step) {
  if (step < 0 || step >= HEARTH_STEP_COUNT) return "unknown step";
  return kStepNames[step];
}

int hearth_last_step(void) { return g_last_step; }

int hearth_mount_proc_tmp(int tmp_mb, int *step) {
  detach_if_mounted("/proc");
  long r = hearth_sys(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
  if (r != 0) return fail(step, HEARTH_STEP_MOUNT_PROC, r);
  detach_if_mounted("/tmp");
  char opts[64];
  int n = copy_str(opts, "mode=1777,size=");
  n += format_uint(tmp_mb > 0 ? static_cast<unsigned>(tmp_mb) : 1u, opts + n);
  opts[n++] = 'm';
  opts[n] = '\0';
  r = hearth_sys(SYS_mount, (long)"hearth-tmp", (long)"/tmp", (long)"tmpfs", MS_NOSUID | MS_NODEV, (long)opts);
  if (r != 0) return fail(step, HEARTH_STEP_MOUNT_TMP, r);
  return 0;
}

int hearth_enter_instance_ex(int tmp_mb, unsigned uid, unsigned gid, const char *hostname, int *step) {
  return hearth_enter_instance_profile(tmp_mb, uid, gid, hostname, -1, step);
}

int hearth_enter_instance_profile(int tmp_mb, unsigned uid, unsigned gid, const char *hostname, int seccomp_profile,
                                  int *step) {
  return hearth_enter_instance_userns(tmp_mb, uid, gid, hostname, seccomp_profile, 0, step);
}

int hearth_drop_capabilities(void) {
  /* the bounding set first, while CAP_SETPCAP (kept by the entry for this) is still effective */
  for (long cap = 0; cap < 64; cap++) {
    long dr = hearth_sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (dr == -EINVAL) break;
    if (dr != 0) return static_cast<int>(dr);
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
  long r = hearth_sys(SYS_capset, (long)&hdr, (long)data);
  if (r != 0) return static_cast<int>(r);
  r = hearth_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (r != 0 && r != -EINVAL) return static_cast<int>(r);
  /* the uid change (setresuid(0) just before) made the process non-dumpable: /proc/self/fd would be root's */
  return static_cast<int>(hearth_sys(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0));
}

int hearth_enter_instance_userns(int tmp_mb, unsigned uid, unsigned gid, const char *hostname, int seccomp_profile,
                                 int userns, int *step) {
  *step = HEARTH_STEP_NONE;
  if (uid == 0 || gid == 0) return fail(step, HEARTH_STEP_SETRESUID, -EINVAL);
  int r = hearth_mount_proc_tmp(tmp_mb, step);
  if (r != 0) return r;
  r = bring_lo_up();
  if (r != 0) return fail(step, HEARTH_STEP_LOOPBACK, r);
  if (hostname != nullptr && hostname[0] != '\0') {
    long n = hearth_strlen(hostname);
    long rr = hearth_sys(SYS_sethostname, (long)hostname, n);
    if (rr != 0) return fail(step, HEARTH_STEP_HOSTNAME, rr);
  }
  /* The bounding set must go while we still hold CAP_SETPCAP. */
  for (long cap = 0; cap < 64; cap++) {
    long rr = hearth_sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (rr == -EINVAL) break; /* past the last capability the kernel knows */
    if (rr != 0) return fail(step, HEARTH_STEP_CAPBSET, rr);
  }
  long rr = hearth_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (rr != 0 && rr != -EINVAL) return fail(step, HEARTH_STEP_AMBIENT, rr);
  rr = hearth_sys(SYS_setgroups, 0, 0);
  if (rr != 0) return fail(step, HEARTH_STEP_SETGROUPS, rr);
  rr = hearth_sys(SYS_setresgid, gid, gid, gid);
  if (rr != 0) return fail(step, HEARTH_STEP_SETRESGID, rr);
  rr = hearth_sys(SYS_setresuid, uid, uid, uid);
  if (rr != 0) return fail(step, HEARTH_STEP_SETRESUID, rr);
  /* setresuid to non-zero ids already cleared permitted/effective; clear inheritable too. */
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
  rr = hearth_sys(SYS_capset, (long)&hdr, (long)data);
  if (rr != 0) return fail(step, HEARTH_STEP_CAPSET, rr);
  if (userns != 0) {
    /* Unprivileged now, so the new user namespace owns no other namespace of the instance (they were
       all made by host root) and is owned by the pool uid. Its creator gets every capability in it,
       and a full bounding set: keep CAP_SETUID and CAP_SETGID (for setresuid(0) once the daemon has
       written the maps) and CAP_SETPCAP (to empty the bounding set then), drop the rest. */
    rr = hearth_sys(SYS_unshare, CLONE_NEWUSER);
    if (rr != 0) return fail(step, HEARTH_STEP_USERNS, rr);
    for (long cap = 0; cap < 64; cap++) {
      if (cap == CAP_SETUID || cap == CAP_SETGID || cap == CAP_SETPCAP) continue;
      long dr = hearth_sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
      if (dr == -EINVAL) break;
      if (dr != 0) return fail(step, HEARTH_STEP_CAPBSET, dr);
    }
    const unsigned keep = (1u << CAP_SETUID) | (1u << CAP_SETGID) | (1u << CAP_SETPCAP);
    struct __user_cap_data_struct kept[2] = {{keep, keep, keep}, {0, 0, 0}};
    rr = hearth_sys(SYS_capset, (long)&hdr, (long)kept);
    if (rr != 0) return fail(step, HEARTH_STEP_USERNS_CAPS, rr);
    rr = hearth_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0);
    if (rr == 0) rr = hearth_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETGID, 0, 0);
    if (rr == 0) rr = hearth_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETPCAP, 0, 0);
    if (rr != 0) return fail(step, HEARTH_STEP_USERNS_CAPS, rr);
  }
  /* The uid change made us non-dumpable, which hides /proc/self/fd from ourselves when no execve follows. */
  rr = hearth_sys(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (rr != 0) return fail(step, HEARTH_STEP_DUMPABLE, rr);
  rr = hearth_sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (rr != 0) return fail(step, HEARTH_STEP_NO_NEW_PRIVS, rr);
  r = seccomp_profile < 0 ? hearth_install_seccomp() : hearth_install_seccomp_profile(seccomp_profile);
  if (r != 0) return fail(step, HEARTH_STEP_SECCOMP, r);
  return 0;
}

int hearth_enter_instance(int tmp_mb, unsigned uid, unsigned gid, const char *hostname) {
  int step = HEARTH_STEP_NONE;
  int r = hearth_enter_instance_ex(tmp_mb, uid, gid, hostname, &step);
  g_last_step = step;
  return r;
}

int hearth_setup_rootfs(const struct hearth_rootfs_spec *spec, int *step, int *index) {
  *index = -1;
  long r = hearth_sys(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0);
  if (r != 0) return fail(step, HEARTH_STEP_MAKE_PRIVATE, r);
  r = hearth_sys(SYS_mount, (long)"hearth-root", (long)spec->root_dir, (long)"tmpfs", MS_NOSUID | MS_NODEV,
                 (long)"mode=0755,size=1m");
  if (r != 0) return fail(step, HEARTH_STEP_ROOT_TMPFS, r);
  for (int i = 0; i < spec->n_mkdirs; i++) {
    r = hearth_sys(SYS_mkdirat, AT_FDCWD, (long)spec->mkdirs[i], 0755);
    if (r != 0 && r != -EEXIST) {
      *index = i;
      return fail(step, HEARTH_STEP_MKDIR, r);
    }
  }
  for (int i = 0; i < spec->n_mkfiles; i++) {
    r = hearth_sys(SYS_openat, AT_FDCWD, (long)spec->mkfiles[i], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (r < 0) {
      *index = i;
      return fail(step, HEARTH_STEP_MKFILE, r);
    }
    hearth_sys(SYS_close, r);
  }
  for (int i = 0; i < spec->n_binds; i++) {
    *index = i;
    long fd = hearth_sys(SYS_open_tree, AT_FDCWD, (long)spec->binds[i].src,
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) return fail(step, HEARTH_STEP_OPEN_TREE, fd);
    struct mount_attr attr;
    char *p = reinterpret_cast<char *>(&attr);
    for (unsigned k = 0; k < sizeof attr; k++) p[k] = 0;
    attr.attr_set = spec->binds[i].attr_set;
    attr.propagation = MS_PRIVATE;
    r = hearth_sys(SYS_mount_setattr, fd, (long)"", AT_EMPTY_PATH | AT_RECURSIVE, (long)&attr, sizeof attr);
    if (r != 0) {
      hearth_sys(SYS_close, fd);
      return fail(step, HEARTH_STEP_MOUNT_SETATTR, r);
    }
    r = hearth_sys(SYS_move_mount, fd, (long)"", AT_FDCWD, (long)spec->binds[i].dst, MOVE_MOUNT_F_EMPTY_PATH);
    hearth_sys(SYS_close, fd);
    if (r != 0) return fail(step, HEARTH_STEP_MOVE_MOUNT, r);
  }
  for (int i = 0; i < spec->n_links; i++) {
    r = hearth_sys(SYS_symlinkat, (long)spec->link_targets[i], AT_FDCWD, (long)spec->link_paths[i]);
    if (r != 0) {
      *index = i;
      return fail(step, HEARTH_STEP_SYMLINK, r);
    }
  }
  *index = -1;
  {
    struct mount_attr attr;
    char *p = reinterpret_cast<char *>(&attr);
    for (unsigned k = 0; k < sizeof attr; k++) p[k] = 0;
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    /* not recursive: only the root tmpfs itself; each bind carries its own attributes */
    r = hearth_sys(SYS_mount_setattr, AT_FDCWD, (long)spec->root_dir, 0, (long)&attr, sizeof attr);
    if (r != 0) return fail(step, HEARTH_STEP_ROOT_READONLY, r);
  }
  r = hearth_sys(SYS_chdir, (long)spec->root_dir);
  if (r != 0) return fail(step, HEARTH_STEP_CHDIR, r);
  r = hearth_sys(SYS_pivot_root, (long)".", (long)".");
  if (r != 0) return fail(step, HEARTH_STEP_PIVOT_ROOT, r);
  r = hearth_sys(SYS_umount2, (long)".", MNT_DETACH);
  if (r != 0) return fail(step, HEARTH_STEP_UMOUNT_OLD_ROOT, r);
  r = hearth_sys(SYS_chdir, (long)"/");
  if (r != 0) return fail(step, HEARTH_STEP_CHDIR, r);
  return 0;
}

}  // extern "C"
