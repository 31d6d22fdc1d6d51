/*
 * The instance seccomp filters: one allow-list per runtime profile, built from the families below
 * when the library is loaded (before any fork or clone), installed by hearth_install_seccomp.
 *
 * A system call is either allowed, allowed with a check of its arguments (clone: no CLONE_NEW*
 * flags; personality: query only), refused with EPERM (the dangerous families: kDenied) or, for
 * every number not listed at all (including calls newer than this list), refused with ENOSYS, which
 * libraries read as "this kernel does not have it" and fall back from. Other ABIs are killed, x32
 * refused. docs/sandbox.md lists the families and why each is there.
 *
 * To add a profile: a name in kProfileNames, and its bit in the families it may use.
 * Man pages: seccomp(2), syscalls(2), clone(2), personality(2).
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stddef.h>

#include "hearth/sandbox.h"
#include "raw-syscall.h"

/* Newer than this system's headers (x86-64 numbers). */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_map_shadow_stack
#define __NR_map_shadow_stack 453
#endif
#ifndef __NR_futex_wake
#define __NR_futex_wake 454
#define __NR_futex_wait 455
#define __NR_futex_requeue 456
#endif
#ifndef __NR_mseal
#define __NR_mseal 462
#endif

namespace {

constexpr unsigned kAll = (1u << HEARTH_SECCOMP_PROFILE_COUNT) - 1;
constexpr unsigned kGeneral = 1u << HEARTH_SECCOMP_GENERAL;

const char *const kProfileNames[HEARTH_SECCOMP_PROFILE_COUNT] = {"general", "node", "python"};

struct Family {
  const char *name;
  unsigned profiles; /* bit per profile that may use it */
  const int *nrs;
  int n;
};

#define HEARTH_FAMILY(name, profiles, ...) \
  const int name##_nrs[] = {__VA_ARGS__};  \
  const Family name = {#name, profiles, name##_nrs, sizeof name##_nrs / sizeof(int)}

HEARTH_FAMILY(file_io, kAll, __NR_read, __NR_write, __NR_readv, __NR_writev, __NR_pread64, __NR_pwrite64, __NR_preadv,
              __NR_pwritev, __NR_preadv2, __NR_pwritev2, __NR_lseek, __NR_sendfile, __NR_splice, __NR_tee,
              __NR_vmsplice, __NR_copy_file_range, __NR_fsync, __NR_fdatasync, __NR_sync_file_range, __NR_syncfs,
              __NR_fallocate, __NR_ftruncate, __NR_truncate, __NR_readahead, __NR_fadvise64, __NR_close,
              __NR_close_range, __NR_dup, __NR_dup2, __NR_dup3, __NR_fcntl, __NR_ioctl, __NR_flock, __NR_cachestat);
HEARTH_FAMILY(paths, kAll, __NR_open, __NR_openat, __NR_openat2, __NR_creat, __NR_stat, __NR_fstat, __NR_lstat,
              __NR_newfstatat, __NR_statx, __NR_statfs, __NR_fstatfs, __NR_access, __NR_faccessat, __NR_faccessat2,
              __NR_readlink, __NR_readlinkat, __NR_getdents, __NR_getdents64, __NR_getcwd, __NR_chdir, __NR_fchdir,
              __NR_mkdir, __NR_mkdirat, __NR_rmdir, __NR_unlink, __NR_unlinkat, __NR_rename, __NR_renameat,
              __NR_renameat2, __NR_link, __NR_linkat, __NR_symlink, __NR_symlinkat, __NR_chmod, __NR_fchmod,
              __NR_fchmodat, __NR_fchmodat2, __NR_chown, __NR_fchown, __NR_lchown, __NR_fchownat, __NR_umask,
              __NR_utime, __NR_utimes, __NR_utimensat, __NR_futimesat, __NR_mknod, __NR_mknodat, __NR_getxattr,
              __NR_lgetxattr, __NR_fgetxattr, __NR_listxattr, __NR_llistxattr, __NR_flistxattr, __NR_setxattr,
              __NR_lsetxattr, __NR_fsetxattr, __NR_removexattr, __NR_lremovexattr, __NR_fremovexattr, __NR_inotify_init,
              __NR_inotify_init1, __NR_inotify_add_watch, __NR_inotify_rm_watch, __NR_memfd_create);
HEARTH_FAMILY(memory, kAll, __NR_brk, __NR_mmap, __NR_munmap, __NR_mremap, __NR_mprotect, __NR_madvise, __NR_mlock,
              __NR_mlock2, __NR_munlock, __NR_mlockall, __NR_munlockall, __NR_mincore, __NR_msync, __NR_membarrier,
              __NR_pkey_alloc, __NR_pkey_free, __NR_pkey_mprotect, __NR_map_shadow_stack, __NR_mseal);
HEARTH_FAMILY(numa, kGeneral, __NR_mbind, __NR_set_mempolicy, __NR_get_mempolicy, __NR_migrate_pages, __NR_move_pages,
              __NR_set_mempolicy_home_node);
HEARTH_FAMILY(processes, kAll, __NR_fork, __NR_vfork, __NR_execve, __NR_execveat, __NR_exit, __NR_exit_group,
              __NR_wait4, __NR_waitid, __NR_kill, __NR_tkill, __NR_tgkill, __NR_getpid, __NR_getppid, __NR_gettid,
              __NR_getpgid, __NR_setpgid, __NR_getpgrp, __NR_getsid, __NR_setsid, __NR_set_tid_address,
              __NR_set_robust_list, __NR_get_robust_list, __NR_rseq, __NR_futex, __NR_futex_waitv, __NR_futex_wake,
              __NR_futex_wait, __NR_futex_requeue, __NR_sched_yield, __NR_sched_getaffinity, __NR_sched_setaffinity,
              __NR_sched_getparam, __NR_sched_setparam, __NR_sched_getscheduler, __NR_sched_setscheduler,
              __NR_sched_get_priority_max, __NR_sched_get_priority_min, __NR_sched_rr_get_interval, __NR_sched_getattr,
              __NR_sched_setattr, __NR_getpriority, __NR_setpriority, __NR_ioprio_get, __NR_ioprio_set, __NR_prctl,
              __NR_arch_prctl, __NR_set_thread_area, __NR_get_thread_area, __NR_prlimit64, __NR_getrlimit,
              __NR_setrlimit, __NR_getrusage, __NR_times, __NR_pidfd_open, __NR_pidfd_send_signal, __NR_seccomp,
              __NR_restart_syscall);
HEARTH_FAMILY(identity, kAll, __NR_getuid, __NR_geteuid, __NR_getgid, __NR_getegid, __NR_getresuid, __NR_getresgid,
              __NR_getgroups, __NR_setuid, __NR_setgid, __NR_setreuid, __NR_setregid, __NR_setresuid, __NR_setresgid,
              __NR_setfsuid, __NR_setfsgid, __NR_setgroups, __NR_capget, __NR_capset);
HEARTH_FAMILY(signals, kAll, __NR_rt_sigaction, __NR_rt_sigprocmask, __NR_rt_sigreturn, __NR_rt_sigpending,
              __NR_rt_sigtimedwait, __NR_rt_sigqueueinfo, __NR_rt_tgsigqueueinfo, __NR_rt_sigsuspend, __NR_sigaltstack,
              __NR_pause, __NR_alarm, __NR_signalfd, __NR_signalfd4);
HEARTH_FAMILY(time, kAll, __NR_nanosleep, __NR_clock_nanosleep, __NR_clock_gettime, __NR_clock_getres,
              __NR_gettimeofday, __NR_time, __NR_getitimer, __NR_setitimer, __NR_timer_create, __NR_timer_settime,
              __NR_timer_gettime, __NR_timer_getoverrun, __NR_timer_delete, __NR_timerfd_create, __NR_timerfd_settime,
              __NR_timerfd_gettime);
HEARTH_FAMILY(event_loop, kAll, __NR_poll, __NR_ppoll, __NR_select, __NR_pselect6, __NR_epoll_create,
              __NR_epoll_create1, __NR_epoll_ctl, __NR_epoll_wait, __NR_epoll_pwait, __NR_epoll_pwait2, __NR_eventfd,
              __NR_eventfd2, __NR_pipe, __NR_pipe2);
HEARTH_FAMILY(sockets, kAll, __NR_socket, __NR_socketpair, __NR_connect, __NR_accept, __NR_accept4, __NR_bind,
              __NR_listen, __NR_shutdown, __NR_getsockname, __NR_getpeername, __NR_getsockopt, __NR_setsockopt,
              __NR_sendto, __NR_recvfrom, __NR_sendmsg, __NR_recvmsg, __NR_sendmmsg, __NR_recvmmsg);
HEARTH_FAMILY(system_info, kAll, __NR_uname, __NR_sysinfo, __NR_getrandom, __NR_getcpu);
HEARTH_FAMILY(sysv_ipc, kGeneral, __NR_shmget, __NR_shmat, __NR_shmctl, __NR_shmdt, __NR_semget, __NR_semop,
              __NR_semctl, __NR_semtimedop, __NR_msgget, __NR_msgsnd, __NR_msgrcv, __NR_msgctl, __NR_mq_open,
              __NR_mq_unlink, __NR_mq_timedsend, __NR_mq_timedreceive, __NR_mq_notify, __NR_mq_getsetattr);
HEARTH_FAMILY(ldt, kGeneral, __NR_modify_ldt);
HEARTH_FAMILY(self_restriction, kAll, __NR_landlock_create_ruleset, __NR_landlock_add_rule,
              __NR_landlock_restrict_self);

const Family *const kFamilies[] = {
    &file_io, &paths,      &memory,  &numa,        &processes, &identity, &signals,
    &time,    &event_loop, &sockets, &system_info, &sysv_ipc,  &ldt,      &self_restriction};

/* Refused with EPERM in every profile: what a sandboxed process must never do, named in the docs. */
const int kDenied[] = {
    /* mounts and the root */ __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_open_tree,
    __NR_move_mount,
    __NR_fsopen,
    __NR_fsmount,
    __NR_fsconfig,
    __NR_fspick,
    __NR_mount_setattr,
    /* namespaces */ __NR_unshare,
    __NR_setns,
    /* other processes' memory and file descriptors */ __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_kcmp,
    __NR_pidfd_getfd,
    __NR_process_madvise,
    __NR_process_mrelease,
    /* kernel attack surface */ __NR_bpf,
    __NR_userfaultfd,
    __NR_perf_event_open,
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    /* the kernel itself */ __NR_kexec_load,
    __NR_kexec_file_load,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_create_module,
    __NR_get_kernel_syms,
    __NR_query_module,
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_syslog,
    __NR_acct,
    __NR_quotactl,
    __NR_quotactl_fd,
    __NR_iopl,
    __NR_ioperm,
    __NR_uselib,
    __NR__sysctl,
    __NR_nfsservctl,
    __NR_lookup_dcookie,
    __NR_vhangup,
    __NR_sync,
    /* host clock and names */ __NR_settimeofday,
    __NR_clock_settime,
    __NR_adjtimex,
    __NR_clock_adjtime,
    __NR_sethostname,
    __NR_setdomainname,
    /* file handles bypass path checks; fanotify watches whole mounts */ __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_fanotify_init,
    __NR_fanotify_mark,
    __NR_memfd_secret};

constexpr int kMaxNr = 512;
constexpr unsigned kCloneNamespaceMask =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
constexpr unsigned kPersonalityQuery = 0xffffffffu;

enum Action : unsigned char { kEnosys = 0, kAllow, kEperm, kClone, kPersonality };

constexpr int kMaxInsns = 2 * kMaxNr + 32;
struct Program {
  struct sock_filter insns[kMaxInsns];
  unsigned short len;
};
Program g_programs[HEARTH_SECCOMP_PROFILE_COUNT];
int g_default_profile = HEARTH_SECCOMP_GENERAL;

void emit(Program &p, struct sock_filter f) {
  if (p.len < kMaxInsns) p.insns[p.len] = f;
  p.len++;
}

unsigned retOf(Action a) {
  switch (a) {
    case kAllow:
      return SECCOMP_RET_ALLOW;
    case kEperm:
      return SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    default:
      return SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
  }
}

/*
 * arch check; x32 refused; then the numbers in ascending runs of one action: "nr > last of run ?
 * next run : action" (each test is one jump over one instruction). clone and personality jump to
 * their argument checks at the end.
 */
void build(Program &p, unsigned profile_bit) {
  Action action[kMaxNr] = {};
  for (const Family *f : kFamilies) {
    if ((f->profiles & profile_bit) == 0) continue;
    for (int i = 0; i < f->n; i++) action[f->nrs[i]] = kAllow;
  }
  for (int nr : kDenied) action[nr] = kEperm;
  action[__NR_clone] = kClone;
  action[__NR_personality] = kPersonality;
  action[__NR_clone3] = kEnosys; /* flags in memory the filter cannot read: libc falls back to clone */

  p.len = 0;
  emit(p, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  emit(p, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  emit(p, BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  emit(p, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  unsigned short clone_jumps[4];
  unsigned short personality_jumps[4];
  int n_clone = 0, n_personality = 0;
  int nr = 0;
  while (nr < kMaxNr) {
    int end = nr;
    while (end + 1 < kMaxNr && action[end + 1] == action[nr]) end++;
    emit(p, BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, static_cast<unsigned>(end), 1, 0));
    if (action[nr] == kClone || action[nr] == kPersonality) {
      (action[nr] == kClone ? clone_jumps[n_clone++] : personality_jumps[n_personality++]) = p.len;
      emit(p, BPF_STMT(BPF_JMP | BPF_JA, 0)); /* patched below */
    } else {
      emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(action[nr])));
    }
    nr = end + 1;
  }
  /* past the table (including x32's nr | 0x40000000): not a call we know */
  emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(kEnosys)));
  unsigned short clone_at = p.len;
  emit(p, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]))); /* low 32 bits */
  emit(p, BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kCloneNamespaceMask, 0, 1));
  emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(kEperm)));
  emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(kAllow)));
  unsigned short personality_at = p.len;
  emit(p, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
  emit(p, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kPersonalityQuery, 0, 1));
  emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(kAllow)));
  emit(p, BPF_STMT(BPF_RET | BPF_K, retOf(kEperm)));
  for (int i = 0; i < n_clone; i++) p.insns[clone_jumps[i]].k = clone_at - clone_jumps[i] - 1;
  for (int i = 0; i < n_personality; i++) p.insns[personality_jumps[i]].k = personality_at - personality_jumps[i] - 1;
}

/* Built once when the library is loaded, in the parent: the child of a spawn only installs them. */
__attribute__((constructor)) void build_all() {
  for (int i = 0; i < HEARTH_SECCOMP_PROFILE_COUNT; i++) build(g_programs[i], 1u << i);
}

}  // namespace

extern "C" {

int hearth_seccomp_profile(const char *name) {
  for (int i = 0; i < HEARTH_SECCOMP_PROFILE_COUNT; i++) {
    const char *a = kProfileNames[i];
    int k = 0;
    while (a[k] != '\0' && a[k] == name[k]) k++;
    if (a[k] == '\0' && name[k] == '\0') return i;
  }
  return -1;
}

int hearth_set_seccomp_profile(int profile) {
  if (profile < 0 || profile >= HEARTH_SECCOMP_PROFILE_COUNT) return -EINVAL;
  g_default_profile = profile;
  return 0;
}

int hearth_install_seccomp_profile(int profile) {
  if (profile < 0 || profile >= HEARTH_SECCOMP_PROFILE_COUNT) return -EINVAL;
  Program &p = g_programs[profile];
  if (p.len == 0 || p.len > kMaxInsns) return -E2BIG;
  struct sock_fprog prog;
  prog.len = p.len;
  prog.filter = p.insns;
  return static_cast<int>(hearth_sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&prog));
}

int hearth_install_seccomp(void) { return hearth_install_seccomp_profile(g_default_profile); }

}  // extern "C"
