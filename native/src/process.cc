/*
 * Process handling: non-blocking reaping, signals by pid or pidfd, pidfd polling.
 * Man pages: waitpid(2), kill(2), pidfd_open(2), pidfd_send_signal(2), poll(2).
 */
#include <napi.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hearth/eintr.h"
#include "js-args.h"
#include "system-error.h"

namespace hearth {

/* waitPid(pid) -> null while running, else { code, signal } (WNOHANG, any child kind). */
Napi::Value WaitPid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int pid = a.Get(0, ArgInt, "pid");
  if (!a.Require(pid > 0, "pid must be positive")) return env.Undefined();
  int status = 0;
  pid_t r = RetryEintr([&] { return waitpid(pid, &status, WNOHANG | __WALL); });
  if (r < 0) {
    ThrowSystemError(env, errno, "waitpid");
    return env.Undefined();
  }
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(status)) {
    out.Set("code", Napi::Number::New(env, WEXITSTATUS(status)));
    out.Set("signal", env.Null());
  } else {
    out.Set("code", env.Null());
    out.Set("signal", Napi::Number::New(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  }
  return out;
}

/* kill(pid, sig, pidfd = -1): pidfd_send_signal when a pidfd is given (no pid-reuse race). */
Napi::Value Kill(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int pid = a.Get(0, ArgInt, "pid");
  int sig = a.Get(1, ArgInt, "signal");
  int pidfd = a.GetOr(2, ArgInt, "pidfd", -1);
  if (!a.ok()) return env.Undefined();
  if (pidfd >= 0) {
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) ThrowSystemError(env, errno, "pidfd_send_signal");
    return env.Undefined();
  }
  if (!a.Require(pid > 0, "pid must be positive")) return env.Undefined();
  if (kill(pid, sig) != 0) ThrowSystemError(env, errno, "kill");
  return env.Undefined();
}

/* pidfdOpen(pid) -> fd (close-on-exec). */
Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int pid = a.Get(0, ArgInt, "pid");
  if (!a.ok()) return env.Undefined();
  return NumberOrThrow(env, syscall(SYS_pidfd_open, pid, 0), "pidfd_open");
}

/* pidfdExited(pidfd) -> true once the process has terminated (poll, no wait). */
Napi::Value PidfdExited(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, ArgInt, "pidfd");
  if (!a.ok()) return env.Undefined();
  struct pollfd p = {fd, POLLIN, 0};
  int r = RetryEintr([&] { return poll(&p, 1, 0); });
  if (r < 0) {
    ThrowSystemError(env, errno, "poll");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, r > 0 && (p.revents & (POLLIN | POLLHUP)) != 0);
}

}  // namespace hearth
