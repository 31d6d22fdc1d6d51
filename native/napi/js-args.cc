/*
 * Argument conversion for the bindings. No man pages: Node-API only.
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

std::optional<bool> ArgBool(const Napi::Value &v, const char *what) {
  if (!v.IsBoolean()) {
    ThrowArgError(v.Env(), std::string(what) + " must be a boolean");
    return std::nullopt;
  }
  return v.As<Napi::Boolean>().Value();
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

std::optional<std::vector<std::pair<std::string, std::string>>> ArgStringPairs(const Napi::Value &v, const char *what,
                                                                               const char *first, const char *second) {
  const std::string shape = std::string(what) + " must be an array of {" + first + ", " + second + "}";
  if (!v.IsArray()) {
    ThrowArgError(v.Env(), shape);
    return std::nullopt;
  }
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<std::pair<std::string, std::string>> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) {
      ThrowArgError(v.Env(), shape);
      return std::nullopt;
    }
    Napi::Object o = item.As<Napi::Object>();
    auto a = ArgString(o.Get(first), (std::string(what) + "[]." + first).c_str());
    if (!a) return std::nullopt;
    auto b = ArgString(o.Get(second), (std::string(what) + "[]." + second).c_str());
    if (!b) return std::nullopt;
    out.emplace_back(std::move(*a), std::move(*b));
  }
  return out;
}

bool Args::Require(bool cond, const std::string &message) {
  if (ok_ && !cond) {
    ThrowArgError(info_.Env(), message);
    ok_ = false;
  }
  return ok_;
}

std::optional<int> OptInt(const Napi::Object &obj, const char *key, int fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  return ArgInt(v, key);
}

std::optional<bool> OptBool(const Napi::Object &obj, const char *key, bool fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  return ArgBool(v, key);
}

}  // namespace hearth
