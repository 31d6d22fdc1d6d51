/*
 * hearth-init: PID 1 of an instance's PID namespace. Starts the runtime (argv[1..]) as its only
 * child, reaps every process that ends up as its child (orphans of the handler are re-parented to
 * PID 1 of the namespace), and exits with the runtime's status when the runtime ends, which ends the
 * namespace (the kernel kills what is left). A runtime killed by signal N is reported as exit code
 * 128 + N: PID 1 of a namespace cannot die of its own signals.
 *
 * Freestanding: no libc (raw system calls from raw-syscall.h), so that its exec and fork cost what a
 * few pages cost. It runs inside the sandbox, after the entry: unprivileged and under seccomp.
 * Man pages: pid_namespaces(7) (init, orphan re-parenting, signals), fork(2), execve(2), wait4(2).
 */
#include <sys/wait.h>

#include "raw-syscall.h"

namespace {

void say(const char *s) { hearth_sys(SYS_write, 2, (long)s, hearth_strlen(s)); }

}  // namespace

extern "C" [[noreturn]] void hearth_init_main(long *sp) {
  long argc = sp[0];
  char **argv = reinterpret_cast<char **>(sp + 1);
  char **envp = argv + argc + 1;
  if (argc < 2) {
    say("usage: hearth-init PROGRAM [ARG...]\n");
    hearth_sys_exit(2);
  }
  long child = hearth_sys(SYS_fork);
  if (child == 0) {
    long r = hearth_sys(SYS_execve, (long)argv[1], (long)(argv + 1), (long)envp);
    hearth_sys_exit(r == -ENOENT ? 127 : 126);
  }
  if (child < 0) hearth_sys_exit(125);
  for (;;) {
    int status = 0;
    long pid = hearth_sys(SYS_wait4, -1, (long)&status, 0, 0);
    if (pid == -EINTR) continue;
    if (pid < 0) hearth_sys_exit(125); /* ECHILD: cannot happen while the runtime lives */
    if (pid != child) continue;        /* an orphan: reaped, nothing else to do */
    if (WIFEXITED(status)) hearth_sys_exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) hearth_sys_exit(128 + WTERMSIG(status));
  }
}

/* The entry point: the kernel's initial stack holds argc, argv[], NULL, envp[], NULL. */
asm(".text\n"
    ".global _start\n"
    "_start:\n"
    "  xor %rbp, %rbp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call hearth_init_main\n"
    "  hlt\n");
