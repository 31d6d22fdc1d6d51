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

using hearth::ArgBool;
using hearth::Args;
using hearth::ArgString;
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

Napi::Object AddressObject(Napi::Env env, const AddrInfo &a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", a.index);
  o.Set("address", FormatIPv4(a.address));
  o.Set("prefixLen", a.prefixLen);
  return o;
}

// A dump of the namespace given by argument 0 (list: listLinks, listAddresses), as an array of toJs(item).
template <typename Item>
Napi::Value DumpToArray(const Napi::CallbackInfo &info, int (*list)(Rtnl &, std::vector<Item> *), const char *call,
                        Napi::Object (*toJs)(Napi::Env, const Item &)) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  if (!nl) return env.Undefined();
  std::vector<Item> items;
  int rc = list(*nl, &items);
  if (rc < 0) return ThrowIfFailed(env, rc, call);
  Napi::Array arr = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) arr.Set(static_cast<uint32_t>(i), toJs(env, items[i]));
  return arr;
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

// The link `name` as seen through nl, or null when there is none.
Napi::Value LinkOrNull(Napi::Env env, Rtnl &nl, const std::string &name) {
  LinkInfo li;
  int rc = getLink(nl, name, 0, &li);
  if (rc == -ENODEV) return env.Null();
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_GETLINK", name);
  return LinkObject(env, li);
}

// getLink(nsFd, name) -> link, or null when there is no such link.
Napi::Value GetLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  return nl ? LinkOrNull(env, *nl, name) : env.Undefined();
}

// openRtnl(nsFd) -> fd of an rtnetlink socket in that namespace (close-on-exec; the caller closes
// it), for repeated getLinkOn() calls that do not enter the namespace each time.
Napi::Value OpenRtnlSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  return nl ? Napi::Number::New(env, nl->release()) : env.Undefined();
}

// getLinkOn(rtnlFd, name) -> link or null: getLink through a socket from openRtnl (a few µs).
Napi::Value GetLinkOn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, hearth::ArgInt, "rtnlFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  if (!a.Require(fd >= 0, "rtnlFd must be an open rtnetlink socket")) return env.Undefined();
  Rtnl nl(fd);
  Napi::Value out = LinkOrNull(env, nl, name);
  nl.release();  // the caller's socket
  return out;
}

// listLinks(nsFd) -> every link of the namespace.
Napi::Value ListLinks(const Napi::CallbackInfo &info) {
  return DumpToArray(info, listLinks, "RTM_GETLINK", LinkObject);
}

// listAddresses(nsFd) -> every IPv4 address of the namespace.
Napi::Value ListAddresses(const Napi::CallbackInfo &info) {
  return DumpToArray(info, listAddresses, "RTM_GETADDR", AddressObject);
}

// createBridge(nsFd, name, mac?)
Napi::Value CreateBridge(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  std::string macText = a.GetOr(2, ArgString, "mac", std::string());
  uint8_t mac[6];
  bool haveMac = !info[2].IsUndefined();
  if (!a.ok() || (haveMac && !ParseMac(env, macText, mac))) return env.Undefined();
  auto nl = OpenRtnl(env, ns);
  if (!nl) return env.Undefined();
  return ThrowIfFailed(env, createBridge(*nl, name, haveMac ? mac : nullptr), "RTM_NEWLINK bridge", name);
}

// createVeth(nsFd, name, peerNsFd, peerName): both ends down.
Napi::Value CreateVeth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  int peerNs = a.Get(2, ArgNsFd, "peerNsFd");
  std::string peerName = a.Get(3, ArgLinkName, "peerName");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  if (!nl) return env.Undefined();
  return ThrowIfFailed(env, createVeth(*nl, name, 0, false, peerName, peerNs, false), "RTM_NEWLINK veth", name);
}

// setLink(nsFd, name, {up?: boolean, master?: string | null (null releases)})
Napi::Value SetLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  if (!a.Require(info[2].IsObject(), "opts must be an object {up?, master?}")) return env.Undefined();
  Napi::Object opts = info[2].As<Napi::Object>();
  Napi::Value upArg = opts.Get("up"), masterArg = opts.Get("master");
  int up = upArg.IsUndefined() ? -1 : a.From(upArg, ArgBool, "up") ? 1 : 0;
  bool haveMaster = !masterArg.IsUndefined() && !masterArg.IsNull();
  std::string masterName = haveMaster ? a.From(masterArg, ArgLinkName, "master") : "";
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  if (!nl) return env.Undefined();
  int index = LinkIndex(env, *nl, name);
  if (index == 0) return env.Undefined();
  int master = masterArg.IsNull() ? 0 : -1;  // 0 releases, -1 leaves it
  if (haveMaster && (master = LinkIndex(env, *nl, masterName)) == 0) return env.Undefined();
  return ThrowIfFailed(env, setLink(*nl, index, up, master), "RTM_NEWLINK", name);
}

// setBridgePortIsolated(nsFd, name, isolated)
Napi::Value SetBridgePortIsolated(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  bool isolated = a.Get(2, ArgBool, "isolated");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  int index = nl ? LinkIndex(env, *nl, name) : 0;
  if (index == 0) return env.Undefined();
  return ThrowIfFailed(env, setBridgePortIsolated(*nl, index, isolated), "RTM_SETLINK protinfo", name);
}

// addAddress(nsFd, name, address, prefixLen)
Napi::Value AddAddress(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  uint32_t addr = a.Get(2, ArgIPv4, "address");
  int prefixLen = a.Get(3, ArgIntIn, "prefixLen", 0, 32);
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  int index = nl ? LinkIndex(env, *nl, name) : 0;
  if (index == 0) return env.Undefined();
  return ThrowIfFailed(env, addAddress(*nl, index, addr, prefixLen), "RTM_NEWADDR", name);
}

// addRoute(nsFd, dst, dstLen, gateway: string | null, dev: string | null)
Napi::Value AddRoute(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  uint32_t dst = a.Get(1, ArgIPv4, "dst");
  int dstLen = a.Get(2, ArgIntIn, "dstLen", 0, 32);
  uint32_t gw = info[3].IsNull() ? 0 : a.Get(3, ArgIPv4, "gateway");
  std::string dev = info[4].IsNull() ? "" : a.Get(4, ArgLinkName, "dev");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  if (!nl) return env.Undefined();
  int oif = dev.empty() ? -1 : LinkIndex(env, *nl, dev);
  if (oif == 0) return env.Undefined();
  return ThrowIfFailed(env, addRoute(*nl, dst, dstLen, gw, oif > 0 ? oif : 0), "RTM_NEWROUTE", dev);
}

// deleteLink(nsFd, name) -> true if deleted, false if it did not exist
Napi::Value DeleteLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string name = a.Get(1, ArgLinkName, "name");
  auto nl = a.ok() ? OpenRtnl(env, ns) : nullptr;
  if (!nl) return env.Undefined();
  LinkInfo li;
  int rc = getLink(*nl, name, 0, &li);
  if (rc == 0) rc = deleteLink(*nl, li.index);
  if (rc == -ENODEV) return Napi::Boolean::New(env, false);
  if (rc < 0) return ThrowIfFailed(env, rc, "RTM_DELLINK", name);
  return Napi::Boolean::New(env, true);
}

}  // namespace hearth_net
