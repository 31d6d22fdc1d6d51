/*
 * Errors shaped like Node's own system errors, shared by both addons (hearth.node, hearth_net.node):
 * an Error with `code` ('EPERM'), `errno` (negative, as libuv reports it), `syscall`, a message
 * from strerror(3) and, when useful, `path` and `step` (what was being done).
 * Man pages: errno(3), strerror(3) (strerrorname_np).
 */
#ifndef HEARTH_SYSTEM_ERROR_H
#define HEARTH_SYSTEM_ERROR_H

#include <napi.h>

#include <string>

namespace hearth {

/* The error object for `err` (a positive errno), not thrown: for rejecting a promise. */
Napi::Error SystemError(Napi::Env env, int err, const char *syscall, const std::string &detail = "",
                        const std::string &path = "");

/* Throws (as a pending JS exception) a system error for `err` (a positive errno). */
void ThrowSystemError(Napi::Env env, int err, const char *syscall, const std::string &detail = "",
                      const std::string &path = "");

/*
 * The result of a call that returns a count or an fd, or -1 with errno set: the number, or (for a
 * negative result) a thrown system error for errno and undefined.
 */
Napi::Value NumberOrThrow(Napi::Env env, long result, const char *syscall);

/* Throws a TypeError with code ERR_INVALID_ARG_VALUE. */
void ThrowArgError(Napi::Env env, const std::string &message);

}  // namespace hearth

#endif
