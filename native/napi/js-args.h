/*
 * Reading plain JavaScript arguments (numbers, strings, arrays of strings, option objects) into
 * C++ values, shared by both addons. A mismatch throws a TypeError (code ERR_INVALID_ARG_VALUE)
 * and yields std::nullopt: the caller returns at once. No man pages: Node-API only.
 */
#ifndef HEARTH_JS_ARGS_H
#define HEARTH_JS_ARGS_H

#include <napi.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

std::optional<int> ArgInt(const Napi::Value &v, const char *what);
std::optional<bool> ArgBool(const Napi::Value &v, const char *what);
std::optional<std::string> ArgString(const Napi::Value &v, const char *what);
std::optional<std::vector<std::string>> ArgStringArray(const Napi::Value &v, const char *what);
/* An array of objects {first: string, second: string}, read as (first, second) pairs. */
std::optional<std::vector<std::pair<std::string, std::string>>> ArgStringPairs(const Napi::Value &v, const char *what,
                                                                               const char *first, const char *second);
/* Property `key` of `obj`, or `fallback` when it is undefined. */
std::optional<int> OptInt(const Napi::Object &obj, const char *key, int fallback);
std::optional<bool> OptBool(const Napi::Object &obj, const char *key, bool fallback);

/*
 * Reads a call's arguments in order. The first mismatch throws its TypeError and turns every later
 * read into a no-op returning a default value, so a function reads everything, then checks ok()
 * once: `Args a(info); int fd = a.Get(0, ArgInt, "fd"); if (!a.ok()) return env.Undefined();`.
 */
class Args {
 public:
  explicit Args(const Napi::CallbackInfo &info) : info_(info) {}
  bool ok() const { return ok_; }

  /* `read` (ArgInt, ArgString, or an addon's own reader taking (value, what, extra...)) on argument i. */
  template <typename Read, typename... Extra>
  auto Get(size_t i, Read read, const char *what, Extra... extra) {
    return From(info_[i], read, what, extra...);
  }

  /* The same on any value, e.g. a property of an options object. */
  template <typename Read, typename... Extra>
  auto From(const Napi::Value &v, Read read, const char *what, Extra... extra) ->
      typename decltype(read(v, what, extra...))::value_type {
    if (!ok_) return {};
    auto got = read(v, what, extra...);
    if (!got) {
      ok_ = false;
      return {};
    }
    return std::move(*got);
  }

  /* Argument i, or `fallback` when it is undefined or not given. */
  template <typename Read, typename T>
  T GetOr(size_t i, Read read, const char *what, T fallback) {
    return info_[i].IsUndefined() ? fallback : Get(i, read, what);
  }

  /* Throws `message` as a TypeError unless `cond` (once: nothing is thrown after a failure). */
  bool Require(bool cond, const std::string &message);

 private:
  const Napi::CallbackInfo &info_;
  bool ok_ = true;
};

}  // namespace hearth

#endif
