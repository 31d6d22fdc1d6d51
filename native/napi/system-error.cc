/*
 * System errors for JavaScript. Man pages: errno(3), strerror(3) (strerrorname_np, glibc >= 2.32).
 */
#include "system-error.h"

#include <errno.h>
#include <string.h>

namespace hearth {

Napi::Error SystemError(Napi::Env env, int err, const char *syscall, const std::string &detail,
                        const std::string &path) {
  const char *name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "EUNKNOWN";
  std::string message = code + ": " + strerror(err) + ", " + syscall;
  if (!detail.empty()) message += " (" + detail + ")";
  if (!path.empty()) message += " '" + path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("code", Napi::String::New(env, code));
  obj.Set("errno", Napi::Number::New(env, -err));
  obj.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) obj.Set("path", Napi::String::New(env, path));
  if (!detail.empty()) obj.Set("step", Napi::String::New(env, detail));
  return error;
}

Napi::Value NumberOrThrow(Napi::Env env, long result, const char *syscall) {
  if (result >= 0) return Napi::Number::New(env, static_cast<double>(result));
  ThrowSystemError(env, errno, syscall);
  return env.Undefined();
}

void ThrowSystemError(Napi::Env env, int err, const char *syscall, const std::string &detail, const std::string &path) {
  SystemError(env, err, syscall, detail, path).ThrowAsJavaScriptException();
}

void ThrowArgError(Napi::Env env, const std::string &message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
  error.ThrowAsJavaScriptException();
}

}  // namespace hearth
