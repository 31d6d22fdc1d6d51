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
/* Argument `i` when given (not undefined), else `fallback`. */
std::optional<int> OptArgInt(const Napi::CallbackInfo &info, size_t i, const char *what, int fallback);
/* Property `key` of `obj`, or `fallback` when it is undefined. */
std::optional<int> OptInt(const Napi::Object &obj, const char *key, int fallback);
std::optional<bool> OptBool(const Napi::Object &obj, const char *key, bool fallback);

}  // namespace hearth

#endif
