/*
 * Reading plain JavaScript arguments (numbers, strings, arrays of strings, option objects) into
 * C++ values, throwing a TypeError on a mismatch. No man pages: Node-API only.
 */
#ifndef HEARTH_JS_ARGS_H
#define HEARTH_JS_ARGS_H

#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace hearth {

std::optional<int> ArgInt(const Napi::Value &v, const char *what);
std::optional<std::string> ArgString(const Napi::Value &v, const char *what);
std::optional<std::vector<std::string>> ArgStringArray(const Napi::Value &v, const char *what);
/* Property `key` of `obj`, or `fallback` when it is undefined. */
std::optional<int> OptInt(const Napi::Object &obj, const char *key, int fallback);
std::optional<bool> OptBool(const Napi::Object &obj, const char *key, bool fallback);

}  // namespace hearth

#endif
