// Node-API surface of hearth_net.node: flat functions taking primitives, returning plain values
// and fds; errors thrown like Node's system errors (code, errno, syscall). Namespaces are named by
// fd (-1 = the daemon's own). Typed in src/net/native-binding.ts.
// Man pages: rtnetlink(7), network_namespaces(7), ioctl_ns(2), mount(2), umount(2), socket(2), connect(2),
// poll(2), inet_pton(3), strerror(3).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <napi.h>

#include <string>
#include <vector>

#include "instance.h"
#include "netns.h"
#include "rtnl.h"

using namespace hearth_net;

namespace {

Napi::Error makeErrno(Napi::Env env, int err, const char* call, const std::string& context) {
  const char* name = strerrorname_np(err);
  std::string msg = std::string(call ? call : "netlink") + ": " + strerror(err);
  if (!context.empty()) msg += " (" + context + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, call ? call : "netlink"));
  return e;
}

Napi::Value throwErrno(Napi::Env env, int negErr, const char* call, const std::string& context = "") {
  makeErrno(env, -negErr, call, context).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value throwType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool parseIp(const std::string& s, uint32_t* out) { return inet_pton(AF_INET, s.c_str(), out) == 1; }

std::string ipString(uint32_t a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// Opens an rtnetlink socket in the namespace of fd (throws on failure; returns -1 then).
int openNl(Napi::Env env, int nsFd) {
  int s = -1;
  const char* call = "socket";
  int rc = rtnlIn(nsFd, &s, &call);
  if (rc < 0) {
    throwErrno(env, rc, call, "rtnetlink socket in netns");
    return -1;
  }
  return s;
}

int resolveIndex(Napi::Env env, Rtnl& nl, const std::string& name) {
  LinkInfo li;
  int rc = getLink(nl, name, 0, &li);
  if (rc < 0) {
    throwErrno(env, rc, "RTM_GETLINK", name);
    return 0;
  }
  return li.index;
}

Napi::Object linkObject(Napi::Env env, const LinkInfo& li) {
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

#define NS_ARG(i) info[i].As<Napi::Number>().Int32Value()
#define STR_ARG(i) info[i].As<Napi::String>().Utf8Value()

Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  NsTask t;
  t.unshareNet = true;
  t.openNs = true;
  int rc = runNsTask(t);
  if (rc < 0) return throwErrno(info.Env(), rc, t.failedCall);
  return Napi::Number::New(info.Env(), t.nsFd);
}

// openNetns(path) -> fd of the network namespace file at path (bind mount or /proc/.../ns/net);
// EINVAL when the file is not a network namespace.
Napi::Value OpenNetns(const Napi::CallbackInfo& info) {
  std::string path = STR_ARG(0);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throwErrno(info.Env(), -errno, "open", path);
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    int e = type < 0 && errno != ENOTTY ? errno : EINVAL;
    close(fd);
    return throwErrno(info.Env(), -e, "ioctl NS_GET_NSTYPE", path);
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GetLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  LinkInfo li;
  int rc = getLink(nl, STR_ARG(1), 0, &li);
  if (rc == -ENODEV) return env.Null();
  if (rc < 0) return throwErrno(env, rc, "RTM_GETLINK", STR_ARG(1));
  return linkObject(env, li);
}

Napi::Value ListLinks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  std::vector<LinkInfo> links;
  int rc = listLinks(nl, &links);
  if (rc < 0) return throwErrno(env, rc, "RTM_GETLINK");
  Napi::Array arr = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) arr.Set(static_cast<uint32_t>(i), linkObject(env, links[i]));
  return arr;
}

Napi::Value ListAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  std::vector<AddrInfo> addrs;
  int rc = listAddresses(nl, &addrs);
  if (rc < 0) return throwErrno(env, rc, "RTM_GETADDR");
  Napi::Array arr = Napi::Array::New(env, addrs.size());
  for (size_t i = 0; i < addrs.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", addrs[i].index);
    o.Set("address", ipString(addrs[i].address));
    o.Set("prefixLen", addrs[i].prefixLen);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

Napi::Value CreateBridge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  uint8_t mac[6];
  bool haveMac = false;
  if (info.Length() > 2 && info[2].IsString()) {
    unsigned b[6];
    if (sscanf(STR_ARG(2).c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) return throwType(env, "createBridge: bad MAC");
    for (int i = 0; i < 6; i++) mac[i] = static_cast<uint8_t>(b[i]);
    haveMac = true;
  }
  int rc = createBridge(nl, STR_ARG(1), haveMac ? mac : nullptr);
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWLINK bridge", STR_ARG(1));
  return env.Undefined();
}

// createLink(nsFd, name, kind): a simple link kind such as "dummy", down.
Napi::Value CreateLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int rc = createLink(nl, STR_ARG(1), STR_ARG(2));
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWLINK", STR_ARG(1));
  return env.Undefined();
}

// createVeth(nsFd, name, peerNsFd, peerName)
Napi::Value CreateVeth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int rc = createVeth(nl, STR_ARG(1), 0, false, STR_ARG(3), NS_ARG(2), false);
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWLINK veth", STR_ARG(1));
  return env.Undefined();
}

// setLink(nsFd, name, {up?: boolean, master?: string | null (null releases)})
Napi::Value SetLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  std::string name = STR_ARG(1);
  Napi::Object opts = info[2].As<Napi::Object>();
  int index = resolveIndex(env, nl, name);
  if (index == 0) return env.Undefined();
  int up = -1, master = -1;
  if (opts.Has("up")) up = opts.Get("up").ToBoolean() ? 1 : 0;
  if (opts.Has("master")) {
    Napi::Value m = opts.Get("master");
    if (m.IsNull()) {
      master = 0;
    } else {
      master = resolveIndex(env, nl, m.As<Napi::String>().Utf8Value());
      if (master == 0) return env.Undefined();
    }
  }
  int rc = setLink(nl, index, up, master);
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWLINK", name);
  return env.Undefined();
}

Napi::Value SetBridgePortIsolated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int index = resolveIndex(env, nl, STR_ARG(1));
  if (index == 0) return env.Undefined();
  int rc = setBridgePortIsolated(nl, index, info[2].ToBoolean());
  if (rc < 0) return throwErrno(env, rc, "RTM_SETLINK protinfo", STR_ARG(1));
  return env.Undefined();
}

// addAddress(nsFd, name, address, prefixLen)
Napi::Value AddAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t addr;
  if (!parseIp(STR_ARG(2), &addr)) return throwType(env, "addAddress: bad IPv4 address");
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int index = resolveIndex(env, nl, STR_ARG(1));
  if (index == 0) return env.Undefined();
  int rc = addAddress(nl, index, addr, NS_ARG(3));
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWADDR", STR_ARG(1));
  return env.Undefined();
}

// addRoute(nsFd, dst, dstLen, gateway: string | null, dev: string | null)
Napi::Value AddRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t dst, gw = 0;
  if (!parseIp(STR_ARG(1), &dst)) return throwType(env, "addRoute: bad destination");
  if (!info[3].IsNull() && !parseIp(STR_ARG(3), &gw)) return throwType(env, "addRoute: bad gateway");
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int oif = 0;
  if (!info[4].IsNull()) {
    oif = resolveIndex(env, nl, STR_ARG(4));
    if (oif == 0) return env.Undefined();
  }
  int rc = addRoute(nl, dst, NS_ARG(2), gw, oif);
  if (rc < 0) return throwErrno(env, rc, "RTM_NEWROUTE", STR_ARG(1));
  return env.Undefined();
}

// deleteLink(nsFd, name) -> true if deleted, false if it did not exist
Napi::Value DeleteLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  LinkInfo li;
  int rc = getLink(nl, STR_ARG(1), 0, &li);
  if (rc == -ENODEV) return Napi::Boolean::New(env, false);
  if (rc < 0) return throwErrno(env, rc, "RTM_GETLINK", STR_ARG(1));
  rc = deleteLink(nl, li.index);
  if (rc == -ENODEV) return Napi::Boolean::New(env, false);
  if (rc < 0) return throwErrno(env, rc, "RTM_DELLINK", STR_ARG(1));
  return Napi::Boolean::New(env, true);
}

// deleteLinkAsync(nsFd, name) -> Promise<boolean>: the same as deleteLink on a libuv pool thread.
// Deleting a veth waits for RCU grace periods inside the kernel (tens of ms on small VMs).
class DeleteLinkWorker : public Napi::AsyncWorker {
 public:
  DeleteLinkWorker(Napi::Env env, int nsFd, std::string name)
      : Napi::AsyncWorker(env), nsFd_(nsFd), name_(std::move(name)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    int s = -1;
    rc_ = rtnlIn(nsFd_, &s, &call_);
    if (rc_ < 0) return;
    Rtnl nl(s);
    LinkInfo li;
    call_ = "RTM_GETLINK";
    rc_ = getLink(nl, name_, 0, &li);
    if (rc_ < 0) return;
    call_ = "RTM_DELLINK";
    rc_ = deleteLink(nl, li.index);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ == -ENODEV) {
      deferred_.Resolve(Napi::Boolean::New(env, false));
    } else if (rc_ < 0) {
      deferred_.Reject(makeErrno(env, -rc_, call_, name_).Value());
    } else {
      deferred_.Resolve(Napi::Boolean::New(env, true));
    }
  }

 private:
  int nsFd_;
  std::string name_;
  int rc_ = 0;
  const char* call_ = "socket";
  Napi::Promise::Deferred deferred_;
};

// deleteLinksAsync(nsFd, names[]) -> Promise<number deleted>: puts the links that exist into one
// link group and deletes the group with one RTM_DELLINK, on a libuv pool thread.
class DeleteLinksWorker : public Napi::AsyncWorker {
 public:
  static constexpr uint32_t kGroup = 0x68656172;  // "hear"; never used for live links
  DeleteLinksWorker(Napi::Env env, int nsFd, std::vector<std::string> names)
      : Napi::AsyncWorker(env), nsFd_(nsFd), names_(std::move(names)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    int s = -1;
    rc_ = rtnlIn(nsFd_, &s, &call_);
    if (rc_ < 0) return;
    Rtnl nl(s);
    for (const std::string& name : names_) {
      LinkInfo li;
      int rc = getLink(nl, name, 0, &li);
      if (rc == -ENODEV) continue;
      if (rc == 0) rc = setLinkGroup(nl, li.index, kGroup);
      if (rc == -ENODEV) continue;  // went away meanwhile
      if (rc < 0) {
        rc_ = rc;
        call_ = "RTM_NEWLINK group";
        failed_ = name;
        break;  // delete what is grouped so far, then report
      }
      grouped_++;
    }
    if (grouped_ > 0) {
      int rc = deleteLinkGroup(nl, kGroup);
      if (rc < 0 && rc != -ENODEV && rc_ == 0) {
        rc_ = rc;
        call_ = "RTM_DELLINK group";
      }
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) {
      deferred_.Reject(makeErrno(env, -rc_, call_, failed_).Value());
    } else {
      deferred_.Resolve(Napi::Number::New(env, grouped_));
    }
  }

 private:
  int nsFd_;
  std::vector<std::string> names_;
  int rc_ = 0;
  int grouped_ = 0;
  const char* call_ = "socket";
  std::string failed_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value DeleteLinksAsync(const Napi::CallbackInfo& info) {
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> names;
  for (uint32_t i = 0; i < arr.Length(); i++) names.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  auto* w = new DeleteLinksWorker(info.Env(), NS_ARG(0), std::move(names));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value DeleteLinkAsync(const Napi::CallbackInfo& info) {
  auto* w = new DeleteLinkWorker(info.Env(), NS_ARG(0), STR_ARG(1));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// waitLinkUp(nsFd, name, forwarding, timeoutMs) -> µs waited
Napi::Value WaitLinkUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int s = openNl(env, NS_ARG(0));
  if (s < 0) return env.Undefined();
  Rtnl nl(s);
  int index = resolveIndex(env, nl, STR_ARG(1));
  if (index == 0) return env.Undefined();
  double waited = 0;
  int rc = waitLinkUp(nl, index, info[2].ToBoolean(), NS_ARG(3), &waited);
  if (rc < 0) return throwErrno(env, rc, "wait link up", STR_ARG(1));
  return Napi::Number::New(env, waited);
}

// writeSysctl(nsFd, path, value): writes a /proc/sys file as seen from inside the netns.
Napi::Value WriteSysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = STR_ARG(1), value = STR_ARG(2);
  NsTask t;
  t.enterFd = NS_ARG(0);
  t.writePath = path.c_str();
  t.writeValue = value.c_str();
  int rc = runNsTask(t);
  if (rc < 0) return throwErrno(env, rc, t.failedCall, path);
  return env.Undefined();
}

// bindMount(source, target): mount(source, target, NULL, MS_BIND) (source e.g. /proc/self/fd/N).
Napi::Value BindMount(const Napi::CallbackInfo& info) {
  std::string src = STR_ARG(0), dst = STR_ARG(1);
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) < 0) return throwErrno(info.Env(), -errno, "mount", dst);
  return info.Env().Undefined();
}

// unmount(target): umount2(MNT_DETACH); false when it was not mounted.
Napi::Value Unmount(const Napi::CallbackInfo& info) {
  std::string dst = STR_ARG(0);
  if (umount2(dst.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
    if (errno == EINVAL || errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    return throwErrno(info.Env(), -errno, "umount2", dst);
  }
  return Napi::Boolean::New(info.Env(), true);
}

bool readInstanceSpec(Napi::Env env, Napi::Object o, InstanceSpec* spec) {
  spec->gwNsFd = o.Get("gwNetnsFd").As<Napi::Number>().Int32Value();
  spec->bridgeIndex = o.Get("bridgeIndex").As<Napi::Number>().Int32Value();
  spec->gwIfName = o.Get("gwIfName").As<Napi::String>().Utf8Value();
  spec->instIfName = o.Get("instIfName").As<Napi::String>().Utf8Value();
  spec->timeoutMs = o.Get("timeoutMs").As<Napi::Number>().Int32Value();
  if (!parseIp(o.Get("address").As<Napi::String>().Utf8Value(), &spec->address) ||
      !parseIp(o.Get("gateway").As<Napi::String>().Utf8Value(), &spec->gateway)) {
    throwType(env, "connectInstance: bad IPv4 address");
    return false;
  }
  return true;
}

Napi::Object instanceResult(Napi::Env env, const InstanceResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("netnsFd", r.netnsFd);
  o.Set("gwIfIndex", r.gwIfIndex);
  o.Set("waitUs", r.waitUs);
  return o;
}

// connectInstance(spec) -> {netnsFd, gwIfIndex, waitUs}; synchronous.
Napi::Value ConnectInstance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  InstanceSpec spec;
  if (!readInstanceSpec(env, info[0].As<Napi::Object>(), &spec)) return env.Undefined();
  InstanceResult r;
  int rc = connectInstance(spec, &r);
  if (rc < 0) return throwErrno(env, rc, r.failedCall, spec.gwIfName);
  return instanceResult(env, r);
}

// The same off the JS thread (libuv pool): the work is a few ms of netlink and a bounded wait.
class ConnectInstanceWorker : public Napi::AsyncWorker {
 public:
  ConnectInstanceWorker(Napi::Env env, InstanceSpec spec)
      : Napi::AsyncWorker(env), spec_(std::move(spec)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { rc_ = connectInstance(spec_, &result_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) {
      deferred_.Reject(makeErrno(env, -rc_, result_.failedCall, spec_.gwIfName).Value());
    } else {
      deferred_.Resolve(instanceResult(env, result_));
    }
  }

 private:
  InstanceSpec spec_;
  InstanceResult result_;
  int rc_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value ConnectInstanceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  InstanceSpec spec;
  if (!readInstanceSpec(env, info[0].As<Napi::Object>(), &spec)) return env.Undefined();
  auto* w = new ConnectInstanceWorker(env, std::move(spec));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// --- test and benchmark probes -------------------------------------------------------------

// socketIn(nsFd, "tcp"|"udp") -> fd of a socket living in that netns
Napi::Value SocketIn(const Napi::CallbackInfo& info) {
  NsTask t;
  t.enterFd = NS_ARG(0);
  t.sockDomain = AF_INET;
  t.sockType = STR_ARG(1) == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  int rc = runNsTask(t);
  if (rc < 0) return throwErrno(info.Env(), rc, t.failedCall);
  return Napi::Number::New(info.Env(), t.sockFd);
}

// tcpConnect(fd, ip, port, timeoutMs) -> µs until connected; throws ECONNREFUSED, ETIMEDOUT, ...
Napi::Value TcpConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = NS_ARG(0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(NS_ARG(2)));
  if (!parseIp(STR_ARG(1), &sa.sin_addr.s_addr)) return throwType(env, "tcpConnect: bad IPv4 address");
  int timeoutMs = NS_ARG(3);
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  double start = monotonicUs();
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    fcntl(fd, F_SETFL, fl);
    return throwErrno(env, -e, "connect");
  }
  if (rc < 0) {
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      int left = timeoutMs - static_cast<int>((monotonicUs() - start) / 1000);
      n = poll(&p, 1, left > 0 ? left : 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      fcntl(fd, F_SETFL, fl);
      return throwErrno(env, -ETIMEDOUT, "connect");
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) {
      fcntl(fd, F_SETFL, fl);
      return throwErrno(env, -soerr, "connect");
    }
  }
  double us = monotonicUs() - start;
  fcntl(fd, F_SETFL, fl);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Napi::Number::New(env, us);
}

// pingPong(fd, count, timeoutMs) -> Float64Array of round-trip µs (1 byte out, 1 byte back each).
Napi::Value PingPong(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = NS_ARG(0);
  int count = NS_ARG(1);
  int timeoutMs = NS_ARG(2);
  Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(count));
  for (int i = 0; i < count; i++) {
    char c = 'p';
    double t0 = monotonicUs();
    if (write(fd, &c, 1) != 1) return throwErrno(env, -errno, "write");
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, timeoutMs);
    if (n <= 0) return throwErrno(env, n == 0 ? -ETIMEDOUT : -errno, "poll");
    ssize_t r = read(fd, &c, 1);
    if (r != 1) return throwErrno(env, r == 0 ? -ECONNRESET : -errno, "read");
    out[static_cast<size_t>(i)] = monotonicUs() - t0;
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createNetns", Napi::Function::New(env, CreateNetns));
  exports.Set("openNetns", Napi::Function::New(env, OpenNetns));
  exports.Set("getLink", Napi::Function::New(env, GetLink));
  exports.Set("listLinks", Napi::Function::New(env, ListLinks));
  exports.Set("listAddresses", Napi::Function::New(env, ListAddresses));
  exports.Set("createBridge", Napi::Function::New(env, CreateBridge));
  exports.Set("createLink", Napi::Function::New(env, CreateLink));
  exports.Set("createVeth", Napi::Function::New(env, CreateVeth));
  exports.Set("setLink", Napi::Function::New(env, SetLink));
  exports.Set("setBridgePortIsolated", Napi::Function::New(env, SetBridgePortIsolated));
  exports.Set("addAddress", Napi::Function::New(env, AddAddress));
  exports.Set("addRoute", Napi::Function::New(env, AddRoute));
  exports.Set("deleteLink", Napi::Function::New(env, DeleteLink));
  exports.Set("deleteLinksAsync", Napi::Function::New(env, DeleteLinksAsync));
  exports.Set("deleteLinkAsync", Napi::Function::New(env, DeleteLinkAsync));
  exports.Set("waitLinkUp", Napi::Function::New(env, WaitLinkUp));
  exports.Set("writeSysctl", Napi::Function::New(env, WriteSysctl));
  exports.Set("bindMount", Napi::Function::New(env, BindMount));
  exports.Set("unmount", Napi::Function::New(env, Unmount));
  exports.Set("connectInstance", Napi::Function::New(env, ConnectInstance));
  exports.Set("connectInstanceAsync", Napi::Function::New(env, ConnectInstanceAsync));
  exports.Set("socketIn", Napi::Function::New(env, SocketIn));
  exports.Set("tcpConnect", Napi::Function::New(env, TcpConnect));
  exports.Set("pingPong", Napi::Function::New(env, PingPong));
  return exports;
}

}  // namespace

NODE_API_MODULE(hearth_net, Init)
