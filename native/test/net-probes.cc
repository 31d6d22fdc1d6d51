// hearth_net_probes.node: test and benchmark probes for the network addon, built as a separate
// addon that the daemon never loads. Sockets made inside a namespace, a connect with a timeout,
// and 1-byte echo round trips. Typed in src/native/net-probes.ts.
// Man pages: socket(2), connect(2), poll(2), getsockopt(2) (SO_ERROR), tcp(7) (TCP_NODELAY),
// fcntl(2), inet_pton(3), clock_gettime(2).
#include <fcntl.h>
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hearth/eintr.h"
#include "js-args.h"
#include "net-args.h"
#include "netns.h"
#include "system-error.h"

namespace {

using hearth::Args;
using hearth::RetryEintr;
using hearth::ThrowSystemError;
using namespace hearth_net;

double MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// socketIn(nsFd, "tcp"|"udp") -> fd of an IPv4 socket living in that netns
Napi::Value SocketIn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int ns = a.Get(0, ArgNsFd, "nsFd");
  std::string type = a.Get(1, hearth::ArgString, "type");
  if (!a.Require(type == "tcp" || type == "udp", "type must be 'tcp' or 'udp'")) return env.Undefined();
  NsTask t;
  t.enterFd = ns;
  t.sockDomain = AF_INET;
  t.sockType = type == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  int rc = runNsTask(t);
  if (rc < 0) return ThrowIfFailed(env, rc, t.failedCall);
  return Napi::Number::New(env, t.sockFd);
}

// Connects fd (non-blocking meanwhile) within timeoutMs; 0 or an errno.
int ConnectWithin(int fd, const sockaddr_in &sa, int timeoutMs, double start) {
  if (connect(fd, reinterpret_cast<const sockaddr *>(&sa), sizeof sa) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd, POLLOUT, 0};
  int n = RetryEintr([&] {
    int left = timeoutMs - static_cast<int>((MonotonicUs() - start) / 1000);
    return poll(&p, 1, left > 0 ? left : 0);
  });
  if (n < 0) return errno;
  if (n == 0) return ETIMEDOUT;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return errno;
  return soerr;
}

// tcpConnect(fd, ip, port, timeoutMs) -> µs until connected; throws ECONNREFUSED, ETIMEDOUT, ...
Napi::Value TcpConnect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, hearth::ArgInt, "fd");
  uint32_t ip = a.Get(1, ArgIPv4, "ip");
  int port = a.Get(2, ArgIntIn, "port", 1, 65535);
  int timeoutMs = a.Get(3, ArgIntIn, "timeoutMs", 0, 600000);
  if (!a.ok()) return env.Undefined();
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = ip;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    ThrowSystemError(env, errno, "fcntl");
    return env.Undefined();
  }
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  double start = MonotonicUs();
  int err = ConnectWithin(fd, sa, timeoutMs, start);
  double us = MonotonicUs() - start;
  fcntl(fd, F_SETFL, fl);
  if (err != 0) {
    ThrowSystemError(env, err, "connect");
    return env.Undefined();
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Napi::Number::New(env, us);
}

// pingPong(fd, count, timeoutMs) -> Float64Array of round-trip µs (1 byte out, 1 byte back each).
Napi::Value PingPong(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Args a(info);
  int fd = a.Get(0, hearth::ArgInt, "fd");
  int count = a.Get(1, ArgIntIn, "count", 0, 10000000);
  int timeoutMs = a.Get(2, ArgIntIn, "timeoutMs", 0, 600000);
  if (!a.ok()) return env.Undefined();
  Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(count));
  for (int i = 0; i < count; i++) {
    char c = 'p';
    double t0 = MonotonicUs();
    if (write(fd, &c, 1) != 1) {
      ThrowSystemError(env, errno, "write");
      return env.Undefined();
    }
    pollfd p{fd, POLLIN, 0};
    int n = RetryEintr([&] { return poll(&p, 1, timeoutMs); });
    if (n <= 0) {
      ThrowSystemError(env, n == 0 ? ETIMEDOUT : errno, "poll");
      return env.Undefined();
    }
    ssize_t r = read(fd, &c, 1);
    if (r != 1) {
      ThrowSystemError(env, r == 0 ? ECONNRESET : errno, "read");
      return env.Undefined();
    }
    out[static_cast<size_t>(i)] = MonotonicUs() - t0;
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("socketIn", Napi::Function::New(env, SocketIn, "socketIn"));
  exports.Set("tcpConnect", Napi::Function::New(env, TcpConnect, "tcpConnect"));
  exports.Set("pingPong", Napi::Function::New(env, PingPong, "pingPong"));
  return exports;
}

}  // namespace

NODE_API_MODULE(hearth_net_probes, Init)
