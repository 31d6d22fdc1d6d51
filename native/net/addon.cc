// The Node-API module hearth_net.node: a flat table of functions taking primitives and returning
// plain values and fds, with the conventions of hearth.node (native/napi: arguments checked, a
// wrong type throws TypeError; failures throw errors shaped like Node's system errors). Namespaces
// are named by fd (-1 = the daemon's own). Typed in src/net/native-binding.ts; test probes live in
// native/test (a separate addon). No man pages: Node-API only.
#include <napi.h>

namespace hearth_net {
Napi::Value CreateNetns(const Napi::CallbackInfo &info);
Napi::Value OpenNetns(const Napi::CallbackInfo &info);
Napi::Value GetLink(const Napi::CallbackInfo &info);
Napi::Value GetLinkOn(const Napi::CallbackInfo &info);
Napi::Value OpenRtnlSocket(const Napi::CallbackInfo &info);
Napi::Value ListLinks(const Napi::CallbackInfo &info);
Napi::Value ListAddresses(const Napi::CallbackInfo &info);
Napi::Value CreateBridge(const Napi::CallbackInfo &info);
Napi::Value CreateVeth(const Napi::CallbackInfo &info);
Napi::Value SetLink(const Napi::CallbackInfo &info);
Napi::Value SetBridgePortIsolated(const Napi::CallbackInfo &info);
Napi::Value AddAddress(const Napi::CallbackInfo &info);
Napi::Value AddRoute(const Napi::CallbackInfo &info);
Napi::Value DeleteLink(const Napi::CallbackInfo &info);
Napi::Value DeleteLinksAsync(const Napi::CallbackInfo &info);
Napi::Value WriteSysctl(const Napi::CallbackInfo &info);
Napi::Value BindMount(const Napi::CallbackInfo &info);
Napi::Value Unmount(const Napi::CallbackInfo &info);
Napi::Value ConnectInstanceAsync(const Napi::CallbackInfo &info);
}  // namespace hearth_net

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace hearth_net;
  const std::pair<const char *, Napi::Value (*)(const Napi::CallbackInfo &)> table[] = {
      {"createNetns", CreateNetns},
      {"openNetns", OpenNetns},
      {"getLink", GetLink},
      {"openRtnl", OpenRtnlSocket},
      {"getLinkOn", GetLinkOn},
      {"listLinks", ListLinks},
      {"listAddresses", ListAddresses},
      {"createBridge", CreateBridge},
      {"createVeth", CreateVeth},
      {"setLink", SetLink},
      {"setBridgePortIsolated", SetBridgePortIsolated},
      {"addAddress", AddAddress},
      {"addRoute", AddRoute},
      {"deleteLink", DeleteLink},
      {"deleteLinksAsync", DeleteLinksAsync},
      {"writeSysctl", WriteSysctl},
      {"bindMount", BindMount},
      {"unmount", Unmount},
      {"connectInstanceAsync", ConnectInstanceAsync},
  };
  for (const auto &[name, fn] : table) exports.Set(name, Napi::Function::New(env, fn, name));
  return exports;
}

}  // namespace

NODE_API_MODULE(hearth_net, Init)
