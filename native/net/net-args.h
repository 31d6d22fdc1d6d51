// Arguments and errors of hearth_net.node, on top of the conventions shared with hearth.node
// (native/napi: checked arguments throwing TypeError, errors shaped like Node's system errors).
// Man pages: inet_pton(3), inet_ntop(3), netdevice(7) (IFNAMSIZ), errno(3).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "rtnl.h"

namespace hearth_net {

/** A network namespace fd: an integer >= -1 (-1: the daemon's own namespace). */
std::optional<int> ArgNsFd(const Napi::Value &v, const char *what = "nsFd");
/** An interface name: 1-15 bytes, no '/', no whitespace (what the kernel accepts). */
std::optional<std::string> ArgLinkName(const Napi::Value &v, const char *what);
/** A dotted-quad IPv4 address, returned in network byte order. */
std::optional<uint32_t> ArgIPv4(const Napi::Value &v, const char *what);
/** An integer in [lo, hi]. */
std::optional<int> ArgIntIn(const Napi::Value &v, const char *what, int lo, int hi);
std::string FormatIPv4(uint32_t address);

/** The error for `negErr` (a -errno) from `call` about link `link` (may be empty). */
Napi::Error NetError(Napi::Env env, int negErr, const char *call, const std::string &link = "");
/** Throws NetError when rc < 0; returns undefined either way (the usual end of a void call). */
Napi::Value ThrowIfFailed(Napi::Env env, int rc, const char *call, const std::string &link = "");
/** An rtnetlink socket in the namespace held by nsFd; nullptr after throwing. */
std::unique_ptr<Rtnl> OpenRtnl(Napi::Env env, int nsFd);
/** The ifindex of link `name`; 0 after throwing (ENODEV and others). */
int LinkIndex(Napi::Env env, Rtnl &nl, const std::string &name);

}  // namespace hearth_net
