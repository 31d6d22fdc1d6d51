/*
 * Argument conversion for the binding. No man pages: Node-API only.
 */
#include "js-args.h"

#include <cmath>

#include "system-error.h"

namespace hearth {

std::optional<int> ArgInt(const Napi::Value &v, const char *what) {
  if (!v.IsNumber()) {
    ThrowArgError(v.Env(), std::string(what) + " must be an integer");
    return std::nullopt;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < -2147483648.0 || d > 4294967295.0) {
    ThrowArgError(v.Env(), std::string(what) + " must be an integer");
    return std::nullopt;
  }
  return static_cast<int>(static_cast<long long>(d));
}

std::optional<std::string> ArgString(const Napi::Value &v, const char *what) {
  if (!v.IsString()) {
    ThrowArgError(v.Env(), std::string(what) + " must be a string");
    return std::nullopt;
  }
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    ThrowArgError(v.Env(), std::string(what) + " must not contain NUL");
    return std::nullopt;
  }
  return s;
}

std::optional<std::vector<std::string>> ArgStringArray(const Napi::Value &v, const char *what) {
  if (!v.IsArray()) {
    ThrowArgError(v.Env(), std::string(what) + " must be an array of strings");
    return std::nullopt;
  }
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    auto s = ArgString(arr.Get(i), what);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
  }
  return out;
}

std::optional<int> OptInt(const Napi::Object &obj, const char *key, int fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  return ArgInt(v, key);
}

std::optional<bool> OptBool(const Napi::Object &obj, const char *key, bool fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) {
    ThrowArgError(obj.Env(), std::string(key) + " must be a boolean");
    return std::nullopt;
  }
  return v.As<Napi::Boolean>().Value();
}

}  // namespace hearth
