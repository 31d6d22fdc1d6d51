/*
 * The Node-API module: a flat table of functions taking primitives and returning plain values or
 * fds. State, policy and retries live in TypeScript (src/sandbox/). No man pages: Node-API only.
 */
#include <napi.h>

namespace hearth {
Napi::Value Spawn(const Napi::CallbackInfo &info);
Napi::Value SpawnAsync(const Napi::CallbackInfo &info);
Napi::Value MountCode(const Napi::CallbackInfo &info);
Napi::Value SocketPair(const Napi::CallbackInfo &info);
Napi::Value SendFds(const Napi::CallbackInfo &info);
Napi::Value CloseFd(const Napi::CallbackInfo &info);
Napi::Value PeerCredentials(const Napi::CallbackInfo &info);
Napi::Value WaitPid(const Napi::CallbackInfo &info);
Napi::Value Kill(const Napi::CallbackInfo &info);
Napi::Value PidfdOpen(const Napi::CallbackInfo &info);
Napi::Value PidfdExited(const Napi::CallbackInfo &info);
Napi::Value SpinUntilLoopEvent(const Napi::CallbackInfo &info);
Napi::Value CgroupCreateAsync(const Napi::CallbackInfo &info);
}  // namespace hearth

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, hearth::Spawn, "spawn"));
  exports.Set("spawnAsync", Napi::Function::New(env, hearth::SpawnAsync, "spawnAsync"));
  exports.Set("mountCode", Napi::Function::New(env, hearth::MountCode, "mountCode"));
  exports.Set("socketpair", Napi::Function::New(env, hearth::SocketPair, "socketpair"));
  exports.Set("sendFds", Napi::Function::New(env, hearth::SendFds, "sendFds"));
  exports.Set("closeFd", Napi::Function::New(env, hearth::CloseFd, "closeFd"));
  exports.Set("peerCredentials", Napi::Function::New(env, hearth::PeerCredentials, "peerCredentials"));
  exports.Set("waitPid", Napi::Function::New(env, hearth::WaitPid, "waitPid"));
  exports.Set("kill", Napi::Function::New(env, hearth::Kill, "kill"));
  exports.Set("pidfdOpen", Napi::Function::New(env, hearth::PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdExited", Napi::Function::New(env, hearth::PidfdExited, "pidfdExited"));
  exports.Set("spinUntilLoopEvent", Napi::Function::New(env, hearth::SpinUntilLoopEvent, "spinUntilLoopEvent"));
  exports.Set("cgroupCreateAsync", Napi::Function::New(env, hearth::CgroupCreateAsync, "cgroupCreateAsync"));
  return exports;
}

}  // namespace

NODE_API_MODULE(hearth, Init)
