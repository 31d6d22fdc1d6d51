/*
 * File descriptors and Unix sockets: socketpair, fd passing, peer credentials.
 * Man pages: socketpair(2), unix(7) (SCM_RIGHTS, SO_PEERCRED), sendmsg(2), cmsg(3), close(2).
 */
#include <napi.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "hearth/eintr.h"
#include "js-args.h"
#include "system-error.h"

namespace hearth {

/* socketpair() -> [fd, fd]: AF_UNIX SOCK_STREAM, both close-on-exec. */
Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ThrowSystemError(env, errno, "socketpair");
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

/* sendFds(fd, data: Buffer, fds: number[]) -> bytes sent: one sendmsg with SCM_RIGHTS. */
Napi::Value SendFds(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, ArgInt, "fd");
  if (!a.Require(info[1].IsBuffer(), "data must be a Buffer")) return env.Undefined();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  a.Require(data.Length() > 0, "data must not be empty");
  a.Require(info[2].IsArray(), "fds must be an array of integers");
  if (!a.ok()) return env.Undefined();
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < arr.Length(); i++) fds.push_back(a.From(arr.Get(i), ArgInt, "fds[]"));
  if (!a.Require(fds.size() <= 250, "too many fds")) return env.Undefined();
  struct iovec iov = {data.Data(), data.Length()};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  return NumberOrThrow(env, RetryEintr([&] { return sendmsg(fd, &msg, MSG_NOSIGNAL); }), "sendmsg");
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, ArgInt, "fd");
  if (a.ok() && close(fd) != 0 && errno != EINTR) ThrowSystemError(env, errno, "close");
  return env.Undefined();
}

/* peerCredentials(fd) -> { pid, uid, gid } of the process at the other end of a Unix socket. */
Napi::Value PeerCredentials(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, ArgInt, "fd");
  if (!a.ok()) return env.Undefined();
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ThrowSystemError(env, errno, "getsockopt", "SO_PEERCRED");
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

}  // namespace hearth
