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
#include "system-error.h"

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
    return o;
  }

  InstanceSpec spec_;
  InstanceResult result_;
};

}  // namespace

// deleteLinksAsync(nsFd, names[]) -> Promise<number deleted>; missing links are skipped.
Napi::Value DeleteLinksAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto ns = ArgNsFd(info[0]);
  if (!ns) return env.Undefined();
  auto names = hearth::ArgStringArray(info[1], "names");
  if (!names) return env.Undefined();
  return (new DeleteLinksWorker(env, *ns, std::move(*names)))->Start();
}

// connectInstanceAsync({gwNetnsFd, bridgeIndex, gwIfName, instIfName, address, gateway})
//   -> Promise<{netnsFd, gwIfIndex}>; on failure nothing is left behind.
Napi::Value ConnectInstanceAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    hearth::ThrowArgError(env, "spec must be an object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  InstanceSpec spec;
  auto gwNs = ArgNsFd(o.Get("gwNetnsFd"), "gwNetnsFd");
  if (!gwNs) return env.Undefined();
  auto bridge = ArgIntIn(o.Get("bridgeIndex"), "bridgeIndex", 1, 0x7fffffff);
  if (!bridge) return env.Undefined();
  auto gwIf = ArgLinkName(o.Get("gwIfName"), "gwIfName");
  if (!gwIf) return env.Undefined();
  auto instIf = ArgLinkName(o.Get("instIfName"), "instIfName");
  if (!instIf) return env.Undefined();
  auto address = ArgIPv4(o.Get("address"), "address");
  if (!address) return env.Undefined();
  auto gateway = ArgIPv4(o.Get("gateway"), "gateway");
  if (!gateway) return env.Undefined();
  spec.gwNsFd = *gwNs;
  spec.bridgeIndex = *bridge;
  spec.gwIfName = std::move(*gwIf);
  spec.instIfName = std::move(*instIf);
  spec.address = *address;
  spec.gateway = *gateway;
  return (new ConnectInstanceWorker(env, std::move(spec)))->Start();
}

}  // namespace hearth_net
