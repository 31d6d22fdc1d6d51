/*
 * cgroupCreateAsync(): makes an instance's cgroup directories, writes its limit files and opens
 * the files a process joins it through, on the libuv thread pool, so that none of these file
 * system calls (a few hundred µs in all, tens of ms when the kernel's cgroup locks are contended)
 * holds the daemon's event loop. Plain steps in the order given; no policy: src/sandbox/cgroups.ts
 * decides what to write. On a failure everything done is undone (fds closed, directories removed).
 * Man pages: mkdir(2), rmdir(2), open(2), write(2), close(2), cgroups(7).
 */
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/eintr.h"
#include "js-args.h"
#include "system-error.h"

namespace hearth {
namespace {

struct CgroupWrite {
  std::string path;
  std::string value;
  int skip;  // 0: every error fails; 1: ENOENT is skipped (a file the kernel may lack); 2: any error is skipped
};

class CgroupCreateWorker : public Napi::AsyncWorker {
 public:
  CgroupCreateWorker(Napi::Env env, std::vector<std::string> mkdirs, std::vector<CgroupWrite> writes,
                     std::vector<std::string> opens)
      : Napi::AsyncWorker(env),
        mkdirs_(std::move(mkdirs)),
        writes_(std::move(writes)),
        opens_(std::move(opens)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

 private:
  void Fail(int err, const char *syscall, const std::string &path) {
    err_ = err;
    syscall_ = syscall;
    path_ = path;
  }

  bool WriteFile(const CgroupWrite &w) {
    int fd = RetryEintr([&] { return open(w.path.c_str(), O_WRONLY | O_CLOEXEC); });
    if (fd < 0) {
      if (w.skip == 2 || (w.skip == 1 && errno == ENOENT)) return true;
      Fail(errno, "open", w.path);
      return false;
    }
    ssize_t n = RetryEintr([&] { return write(fd, w.value.data(), w.value.size()); });
    int write_errno = errno;
    close(fd);
    if (n < 0 && w.skip != 2) {
      Fail(write_errno, "write", w.path);
      return false;
    }
    return true;
  }

  void Execute() override {
    for (const std::string &dir : mkdirs_) {
      if (mkdir(dir.c_str(), 0755) != 0) {
        Fail(errno, "mkdir", dir);
        Undo();
        return;
      }
      made_.push_back(&dir);
    }
    for (const CgroupWrite &w : writes_) {
      if (!WriteFile(w)) {
        Undo();
        return;
      }
    }
    for (const std::string &p : opens_) {
      int fd = RetryEintr([&] { return open(p.c_str(), O_WRONLY | O_CLOEXEC); });
      if (fd < 0) {
        Fail(errno, "open", p);
        Undo();
        return;
      }
      fds_.push_back(fd);
    }
  }

  void Undo() {
    for (int fd : fds_) close(fd);
    fds_.clear();
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) rmdir((*it)->c_str());
    made_.clear();
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(SystemError(env, err_, syscall_, "cgroup", path_).Value());
      return;
    }
    Napi::Array fds = Napi::Array::New(env, fds_.size());
    for (size_t i = 0; i < fds_.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds_[i]));
    deferred_.Resolve(fds);
  }

  std::vector<std::string> mkdirs_;
  std::vector<CgroupWrite> writes_;
  std::vector<std::string> opens_;
  std::vector<const std::string *> made_;
  std::vector<int> fds_;
  int err_ = 0;
  const char *syscall_ = "";
  std::string path_;
  Napi::Promise::Deferred deferred_;
};

std::optional<std::vector<CgroupWrite>> ArgWrites(const Napi::Value &v) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) {
    ThrowArgError(env, "writes must be an array of { path, value, skip? }");
    return std::nullopt;
  }
  Napi::Array a = v.As<Napi::Array>();
  std::vector<CgroupWrite> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) {
      ThrowArgError(env, "writes[" + std::to_string(i) + "] must be an object");
      return std::nullopt;
    }
    Napi::Object o = e.As<Napi::Object>();
    Napi::Value path = o.Get("path"), value = o.Get("value"), skip = o.Get("skip");
    if (!path.IsString() || !value.IsString()) {
      ThrowArgError(env, "writes[" + std::to_string(i) + "]: path and value must be strings");
      return std::nullopt;
    }
    int s = 0;
    if (skip.IsString()) {
      std::string k = skip.As<Napi::String>().Utf8Value();
      if (k == "ENOENT") {
        s = 1;
      } else if (k == "any") {
        s = 2;
      } else {
        ThrowArgError(env, "writes[" + std::to_string(i) + "].skip must be \"ENOENT\" or \"any\"");
        return std::nullopt;
      }
    } else if (!skip.IsUndefined()) {
      ThrowArgError(env, "writes[" + std::to_string(i) + "].skip must be \"ENOENT\" or \"any\"");
      return std::nullopt;
    }
    out.push_back({path.As<Napi::String>().Utf8Value(), value.As<Napi::String>().Utf8Value(), s});
  }
  return out;
}

}  // namespace

/*
 * cgroupCreateAsync({ mkdirs: string[], writes: { path, value, skip? }[], open: string[] }) -> Promise<number[]>
 * On the libuv pool: mkdir each directory (0755), then write each value to its file (open, one write,
 * close; skip "ENOENT" ignores a missing file, "any" every error), then open each `open` path
 * O_WRONLY|O_CLOEXEC. Resolves with those fds (the caller closes them). Rejects with a Node-style
 * system error (`syscall` mkdir/open/write, `path`, `step` "cgroup") after closing what it opened and
 * removing the directories it made. Bad arguments throw at once.
 */
Napi::Value CgroupCreateAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowArgError(env, "cgroupCreateAsync(opts): opts must be an object");
    return env.Undefined();
  }
  Napi::Object opts = info[0].As<Napi::Object>();
  auto mkdirs = ArgStringArray(opts.Get("mkdirs"), "mkdirs");
  if (!mkdirs) return env.Undefined();
  auto writes = ArgWrites(opts.Get("writes"));
  if (!writes) return env.Undefined();
  auto opens = ArgStringArray(opts.Get("open"), "open");
  if (!opens) return env.Undefined();
  return (new CgroupCreateWorker(env, std::move(*mkdirs), std::move(*writes), std::move(*opens)))->Start();
}

}  // namespace hearth
