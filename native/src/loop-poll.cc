/*
 * Busy-polling the event loop: a short spin before the loop would sleep, for answers that come
 * back within microseconds. Man pages: poll(2), epoll(7), clock_gettime(2).
 */
#include <napi.h>
#include <poll.h>
#include <time.h>
#include <uv.h>

#include "js-args.h"
#include "system-error.h"

namespace hearth {

namespace {
long long NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
}  // namespace

/*
 * spinUntilLoopEvent(maxUs) -> microseconds spun, or -1 when nothing became ready in time. Polls
 * (without sleeping) the loop's own epoll fd, which is readable once any of the loop's handles has
 * an event: the caller returns to the loop and finds it at once, without the sleep and wake-up of
 * its CPU in between.
 */
Napi::Value SpinUntilLoopEvent(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto max_us = ArgInt(info[0], "maxUs");
  if (!max_us) return env.Undefined();
  if (*max_us < 0 || *max_us > 1000000) {
    ThrowArgError(env, "maxUs must be 0-1000000");
    return env.Undefined();
  }
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return Napi::Number::New(env, -1);
  struct pollfd p = {uv_backend_fd(loop), POLLIN, 0};
  const long long start = NowNs();
  const long long end = start + static_cast<long long>(*max_us) * 1000LL;
  for (;;) {
    if (poll(&p, 1, 0) > 0) return Napi::Number::New(env, static_cast<double>(NowNs() - start) / 1000.0);
    if (NowNs() >= end) return Napi::Number::New(env, -1);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

}  // namespace hearth
