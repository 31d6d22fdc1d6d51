// The calls that run on the libuv thread pool because the kernel makes them slow: deleting veths
// waits for RCU grace periods (tens of ms on small VMs), and connecting an instance is a dozen
// netlink requests in two namespaces. None of them sleeps or waits for link state: the caller
// polls that from TypeScript. Man pages: rtnetlink(7), veth(4), network_namespaces(7).
#include <vector>

#include "instance.h"
#include "js-args.h"
#include "net-args.h"
#include "netns.h"
#include "rtnl.h"

namespace hearth_net {

namespace {

// An AsyncWorker settling a promise: Run() on the pool returns 0 or -errno; Settle() on the JS
// thread resolves with the value of Result() or rejects with a system error.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

 protected:
  virtual int Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  const char *call_ = "socket";
  std::string link_;

 private:
  void Execute() override { rc_ = Run(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) {
      deferred_.Reject(NetError(env, rc_, call_, link_).Value());
    } else {
      deferred_.Resolve(Result(env));
    }
  }
  int rc_ = 0;
  Napi::Promise::Deferred deferred_;
};

// Puts the named links that exist into one link group and deletes the group with one RTM_DELLINK.
class DeleteLinksWorker : public PromiseWorker {
 public:
  static constexpr uint32_t kGroup = 0x68656172;  // "hear"; never used for live links
  DeleteLinksWorker(Napi::Env env, int nsFd, std::vector<std::string> names)
      : PromiseWorker(env), nsFd_(nsFd), names_(std::move(names)) {}

 private:
  int Run() override {
    int s = -1;
    int rc = rtnlIn(nsFd_, &s, &call_);
    if (rc < 0) return rc;
    Rtnl nl(s);
    int err = 0;
    for (const std::string &name : names_) {
      LinkInfo li;
      rc = getLink(nl, name, 0, &li);
      if (rc == 0) rc = setLinkGroup(nl, li.index, kGroup);
      if (rc == -ENODEV) continue;  // missing, or went away meanwhile
      if (rc < 0) {
        err = rc;
        call_ = "RTM_NEWLINK group";
        link_ = name;
        break;  // delete what is grouped so far, then report
      }
      grouped_++;
    }
    if (grouped_ > 0) {
      int del = deleteLinkGroup(nl, kGroup);
      if (del < 0 && del != -ENODEV && err == 0) {
        call_ = "RTM_DELLINK group";
        err = del;
      }
    }
    return err;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, grouped_); }

  int nsFd_;
  std::vector<std::string> names_;
  int grouped_ = 0;
};

class ConnectInstanceWorker : public PromiseWorker {
 public:
  ConnectInstanceWorker(Napi::Env env, InstanceSpec spec) : PromiseWorker(env), spec_(std::move(spec)) {
    link_ = spec_.gwIfName;
  }

 private:
  int Run() override {
    int rc = connectInstance(spec_, &result_);
    call_ = result_.failedCall;
    return rc;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("netnsFd", result_.netnsFd);
    o.Set("gwIfIndex", result_.gwIfIndex);
    o.Set("instRtnlFd", result_.instRtnlFd);
    o.Set("gwRtnlFd", result_.gwRtnlFd);
    return o;
  }

  InstanceSpec spec_;
  InstanceResult result_;
};

}  // namespace

// deleteLinksAsync(nsFd, names[]) -> Promise<number deleted>; missing links are skipped.
Napi::Value DeleteLinksAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  hearth::Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::vector<std::string> names = a.Get(1, hearth::ArgStringArray, "names");
  if (!a.ok()) return env.Undefined();
  return (new DeleteLinksWorker(env, ns, std::move(names)))->Start();
}

// connectInstanceAsync({gwNetnsFd, bridgeIndex, gwIfName, instIfName, address, gateway})
//   -> Promise<{netnsFd, gwIfIndex, instRtnlFd, gwRtnlFd}> (the caller closes the fds); on failure
//   nothing is left behind.
Napi::Value ConnectInstanceAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  hearth::Args a(info);
  if (!a.Require(info[0].IsObject(), "spec must be an object")) return env.Undefined();
  Napi::Object o = info[0].As<Napi::Object>();
  InstanceSpec spec;
  spec.gwNsFd = a.From(o.Get("gwNetnsFd"), ArgNsFd, "gwNetnsFd");
  spec.bridgeIndex = a.From(o.Get("bridgeIndex"), ArgIntIn, "bridgeIndex", 1, 0x7fffffff);
  spec.gwIfName = a.From(o.Get("gwIfName"), ArgLinkName, "gwIfName");
  spec.instIfName = a.From(o.Get("instIfName"), ArgLinkName, "instIfName");
  spec.address = a.From(o.Get("address"), ArgIPv4, "address");
  spec.gateway = a.From(o.Get("gateway"), ArgIPv4, "gateway");
  if (!a.ok()) return env.Undefined();
  return (new ConnectInstanceWorker(env, std::move(spec)))->Start();
}

}  // namespace hearth_net
