/*
 * Retrying a system call interrupted by a signal. Man pages: signal(7) (EINTR), errno(3).
 */
#ifndef HEARTH_EINTR_H
#define HEARTH_EINTR_H

#include <errno.h>

namespace hearth {

/* Calls `call` until it returns >= 0 or fails with an errno other than EINTR; returns its result. */
template <typename Call>
auto RetryEintr(Call call) -> decltype(call()) {
  decltype(call()) r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace hearth

#endif
