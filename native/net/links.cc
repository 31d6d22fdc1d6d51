// Links, addresses and routes of one network namespace, one rtnetlink request each, synchronous
// (each is a few tens of µs of kernel work). The namespace is argument 0: an fd, or -1 for the
// daemon's own. Man pages: rtnetlink(7), netdevice(7) (IFF_UP), bridge(8), inet_pton(3).
#include <linux/if.h>
#include <stdio.h>

#include <vector>

#include "js-args.h"
#include "net-args.h"
#include "rtnl.h"
#include "system-error.h"

namespace hearth_net {

using hearth::ThrowArgError;

namespace {

Napi::Object LinkObject(Napi::Env env, const LinkInfo &li) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", li.index);
  o.Set("name", li.name);
  o.Set("kind", li.kind);
  o.Set("slaveKind", li.slaveKind);
  o.Set("master", li.master);
  o.Set("up", (li.flags & IFF_UP) != 0);
  o.Set("operUp", li.operstate == IF_OPER_UP);
  o.Set("brportState", li.brportState);
  return o;
}

// "aa:bb:cc:dd:ee:ff" -> 6 bytes; false after throwing.
bool ParseMac(Napi::Env env, const std::string &s, uint8_t mac[6]) {
  unsigned b[6];
  char tail;
  if (sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    ThrowArgError(env, "mac must be six hex bytes separated by ':'");
    return false;
  }
  for (int i = 0; i < 6; i++) mac[i] = static_cast<uint8_t>(b[i]);
  return true;
}

}  // namespace

// getLink(nsFd, name) -> link, or null when there is no such link.
Napi::Value GetLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  LinkInfo li;
  int rc = getLink(*nl, *name, 0, &li);
  if (rc == -ENODEV) return env.Null();
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_GETLINK", *name);
  return LinkObject(env, li);
}

Napi::Value ListLinks(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  std::vector<LinkInfo> links;
  int rc = listLinks(*nl, &links);
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_GETLINK");
  Napi::Array arr = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) arr.Set(static_cast<uint32_t>(i), LinkObject(env, links[i]));
  return arr;
}

Napi::Value ListAddresses(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  std::vector<AddrInfo> addrs;
  int rc = listAddresses(*nl, &addrs);
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_GETADDR");
  Napi::Array arr = Napi::Array::New(env, addrs.size());
  for (size_t i = 0; i < addrs.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", addrs[i].index);
    o.Set("address", FormatIPv4(addrs[i].address));
    o.Set("prefixLen", addrs[i].prefixLen);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

// createBridge(nsFd, name, mac?)
Napi::Value CreateBridge(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  uint8_t mac[6];
  bool haveMac = info.Length() > 2 && !info[2].IsUndefined();
  if (haveMac) {
    auto s = hearth::ArgString(info[2], "mac");
    if (!s || !ParseMac(env, *s, mac)) return env.Undefined();
  }
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  return ThrowIfFailed(env, createBridge(*nl, *name, haveMac ? mac : nullptr), "RTM_NEWLINK bridge", *name);
}

// createVeth(nsFd, name, peerNsFd, peerName): both ends down.
Napi::Value CreateVeth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  auto peerNs = ArgNsFd(info[2], "peerNsFd");
  if (!peerNs) return env.Undefined();
  auto peerName = ArgLinkName(info[3], "peerName");
  if (!peerName) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  int rc = createVeth(*nl, *name, 0, false, *peerName, *peerNs, false);
  return ThrowIfFailed(env, rc, "RTM_NEWLINK veth", *name);
}

// setLink(nsFd, name, {up?: boolean, master?: string | null (null releases)})
Napi::Value SetLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  if (!info[2].IsObject()) {
    ThrowArgError(env, "opts must be an object {up?, master?}");
    return env.Undefined();
  }
  Napi::Object opts = info[2].As<Napi::Object>();
  int up = -1;
  if (!opts.Get("up").IsUndefined()) {
    auto u = hearth::ArgBool(opts.Get("up"), "up");
    if (!u) return env.Undefined();
    up = *u ? 1 : 0;
  }
  Napi::Value masterArg = opts.Get("master");
  std::optional<std::string> masterName;
  if (!masterArg.IsUndefined() && !masterArg.IsNull()) {
    masterName = ArgLinkName(masterArg, "master");
    if (!masterName) return env.Undefined();
  }
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  int index = LinkIndex(env, *nl, *name);
  if (index == 0) return env.Undefined();
  int master = masterArg.IsNull() ? 0 : -1;
  if (masterName) {
    master = LinkIndex(env, *nl, *masterName);
    if (master == 0) return env.Undefined();
  }
  return ThrowIfFailed(env, setLink(*nl, index, up, master), "RTM_NEWLINK", *name);
}

// setBridgePortIsolated(nsFd, name, isolated)
Napi::Value SetBridgePortIsolated(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  auto isolated = hearth::ArgBool(info[2], "isolated");
  if (!isolated) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  int index = LinkIndex(env, *nl, *name);
  if (index == 0) return env.Undefined();
  return ThrowIfFailed(env, setBridgePortIsolated(*nl, index, *isolated), "RTM_SETLINK protinfo", *name);
}

// addAddress(nsFd, name, address, prefixLen)
Napi::Value AddAddress(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  auto addr = ArgIPv4(info[2], "address");
  if (!addr) return env.Undefined();
  auto prefixLen = ArgIntIn(info[3], "prefixLen", 0, 32);
  if (!prefixLen) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  int index = LinkIndex(env, *nl, *name);
  if (index == 0) return env.Undefined();
  return ThrowIfFailed(env, addAddress(*nl, index, *addr, *prefixLen), "RTM_NEWADDR", *name);
}

// addRoute(nsFd, dst, dstLen, gateway: string | null, dev: string | null)
Napi::Value AddRoute(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto dst = ArgIPv4(info[1], "dst");
  if (!dst) return env.Undefined();
  auto dstLen = ArgIntIn(info[2], "dstLen", 0, 32);
  if (!dstLen) return env.Undefined();
  std::optional<uint32_t> gw = 0;
  if (!info[3].IsNull()) gw = ArgIPv4(info[3], "gateway");
  if (!gw) return env.Undefined();
  std::optional<std::string> dev;
  if (!info[4].IsNull()) {
    dev = ArgLinkName(info[4], "dev");
    if (!dev) return env.Undefined();
  }
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  int oif = 0;
  if (dev) {
    oif = LinkIndex(env, *nl, *dev);
    if (oif == 0) return env.Undefined();
  }
  return ThrowIfFailed(env, addRoute(*nl, *dst, *dstLen, *gw, oif), "RTM_NEWROUTE", dev.value_or(""));
}

// deleteLink(nsFd, name) -> true if deleted, false if it did not exist
Napi::Value DeleteLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto name = ArgLinkName(info[1], "name");
  if (!name) return env.Undefined();
  auto nl = OpenRtnl(env, *ns);
  if (!nl) return env.Undefined();
  LinkInfo li;
  int rc = getLink(*nl, *name, 0, &li);
  if (rc == 0) rc = deleteLink(*nl, li.index);
  if (rc == -ENODEV) return Napi::Boolean::New(env, false);
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_DELLINK", *name);
  return Napi::Boolean::New(env, true);
}

}  // namespace hearth_net
