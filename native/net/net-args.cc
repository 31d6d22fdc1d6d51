// Arguments and errors of hearth_net.node.
// Man pages: inet_pton(3), inet_ntop(3), netdevice(7) (IFNAMSIZ), errno(3), strerror(3).
#include "net-args.h"

#include <arpa/inet.h>
#include <net/if.h>

#include "js-args.h"
#include "netns.h"
#include "system-error.h"

namespace hearth_net {

std::optional<int> ArgNsFd(const Napi::Value &v, const char *what) {
  auto fd = hearth::ArgInt(v, what);
  if (fd && *fd < -1) {
    hearth::ThrowArgError(v.Env(), std::string(what) + " must be a namespace fd or -1");
    return std::nullopt;
  }
  return fd;
}

std::optional<std::string> ArgLinkName(const Napi::Value &v, const char *what) {
  auto name = hearth::ArgString(v, what);
  if (!name) return std::nullopt;
  bool ok = !name->empty() && name->size() < IFNAMSIZ && *name != "." && *name != "..";
  for (char c : *name) ok = ok && c != '/' && c != ':' && c > ' ';
  if (!ok) {
    hearth::ThrowArgError(v.Env(),
                          std::string(what) + " must be an interface name (1-15 bytes, no '/', ':' or spaces)");
    return std::nullopt;
  }
  return name;
}

std::optional<uint32_t> ArgIPv4(const Napi::Value &v, const char *what) {
  auto s = hearth::ArgString(v, what);
  if (!s) return std::nullopt;
  uint32_t out = 0;
  if (inet_pton(AF_INET, s->c_str(), &out) != 1) {
    hearth::ThrowArgError(v.Env(), std::string(what) + " must be a dotted-quad IPv4 address");
    return std::nullopt;
  }
  return out;
}

std::optional<int> ArgIntIn(const Napi::Value &v, const char *what, int lo, int hi) {
  auto n = hearth::ArgInt(v, what);
  if (n && (*n < lo || *n > hi)) {
    hearth::ThrowArgError(v.Env(), std::string(what) + " must be " + std::to_string(lo) + "-" + std::to_string(hi));
    return std::nullopt;
  }
  return n;
}

std::string FormatIPv4(uint32_t address) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, buf, sizeof buf);
  return buf;
}

Napi::Error NetError(Napi::Env env, int negErr, const char *call, const std::string &link) {
  return hearth::SystemError(env, -negErr, call != nullptr ? call : "netlink", link.empty() ? "" : "link " + link);
}

Napi::Value ThrowIfFailed(Napi::Env env, int rc, const char *call, const std::string &link) {
  if (rc < 0) NetError(env, rc, call, link).ThrowAsJavaScriptException();
  return env.Undefined();
}

std::unique_ptr<Rtnl> OpenRtnl(Napi::Env env, int nsFd) {
  int s = -1;
  const char *call = "socket";
  int rc = rtnlIn(nsFd, &s, &call);
  if (rc < 0) {
    NetError(env, rc, call).ThrowAsJavaScriptException();
    return nullptr;
  }
  return std::make_unique<Rtnl>(s);
}

int LinkIndex(Napi::Env env, Rtnl &nl, const std::string &name) {
  LinkInfo li;
  int rc = getLink(nl, name, 0, &li);
  if (rc < 0) {
    NetError(env, rc, "RTM_GETLINK", name).ThrowAsJavaScriptException();
    return 0;
  }
  return li.index;
}

}  // namespace hearth_net
