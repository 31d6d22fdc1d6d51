/*
 * Raw system calls that never touch errno or any other libc state: safe in the child of a
 * multithreaded process, including one sharing its parent's memory (CLONE_VM).
 * Man pages: syscall(2), syscalls(2).
 */
#ifndef HEARTH_RAW_SYSCALL_H
#define HEARTH_RAW_SYSCALL_H

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Returns the kernel's result: >= 0 on success, -errno on failure. */
static inline long hearth_sys(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#else
  long ret = syscall(n, a, b, c, d, e, f);
  return ret == -1 ? -errno : ret;
#endif
}

[[noreturn]] static inline void hearth_sys_exit(int code) {
  for (;;) hearth_sys(SYS_exit_group, code);
}

static inline long hearth_strlen(const char *s) {
  long n = 0;
  while (s[n] != '\0') n++;
  return n;
}

#endif
