// Network namespaces held by fd, and the mounts that name them: create, open, write a sysctl
// inside, bind-mount to a path, unmount. Man pages: network_namespaces(7), ioctl_ns(2)
// (NS_GET_NSTYPE), open(2), mount(2), umount(2), proc(5) (/proc/sys).
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "js-args.h"
#include "net-args.h"
#include "netns.h"
#include "system-error.h"

namespace hearth_net {

using hearth::Args;
using hearth::ArgString;
using hearth::ThrowSystemError;

// createNetns() -> fd of a new, empty network namespace.
Napi::Value CreateNetns(const Napi::CallbackInfo &info) {
  NsTask t;
  t.unshareNet = true;
  t.openNs = true;
  int rc = runNsTask(t);
  if (rc < 0) return ThrowIfFailed(info.Env(), rc, t.failedCall);
  return Napi::Number::New(info.Env(), t.nsFd);
}

// openNetns(path) -> fd of the network namespace file at path (bind mount or /proc/.../ns/net);
// EINVAL when the file is not a network namespace.
Napi::Value OpenNetns(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  std::string path = a.Get(0, ArgString, "path");
  if (!a.ok()) return env.Undefined();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ThrowSystemError(env, errno, "open", "", path);
    return env.Undefined();
  }
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    int e = type < 0 && errno != ENOTTY ? errno : EINVAL;
    close(fd);
    ThrowSystemError(env, e, "ioctl", "NS_GET_NSTYPE", path);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// writeSysctl(nsFd, path, value): writes a /proc/sys file as seen from inside the netns.
Napi::Value WriteSysctl(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string path = a.Get(1, ArgString, "path");
  std::string value = a.Get(2, ArgString, "value");
  if (!a.Require(path.rfind("/proc/sys/", 0) == 0, "path must be under /proc/sys/")) return env.Undefined();
  NsTask t;
  t.enterFd = ns;
  t.writePath = path.c_str();
  t.writeValue = value.c_str();
  int rc = runNsTask(t);
  if (rc < 0) ThrowSystemError(env, -rc, t.failedCall, "", path);
  return env.Undefined();
}

// bindMount(source, target): mount(source, target, NULL, MS_BIND) (source e.g. /proc/self/fd/N).
Napi::Value BindMount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  std::string src = a.Get(0, ArgString, "source");
  std::string dst = a.Get(1, ArgString, "target");
  if (a.ok() && mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    ThrowSystemError(env, errno, "mount", "", dst);
  }
  return env.Undefined();
}

// unmount(target): umount2(MNT_DETACH); false when it was not mounted.
Napi::Value Unmount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  std::string dst = a.Get(0, ArgString, "target");
  if (!a.ok()) return env.Undefined();
  if (umount2(dst.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) return Napi::Boolean::New(env, true);
  if (errno == EINVAL || errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowSystemError(env, errno, "umount2", "", dst);
  return env.Undefined();
}

}  // namespace hearth_net
