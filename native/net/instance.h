// Per-instance network plumbing in one call: a new netns, a veth into the gateway's bridge, address,
// on-link default route and permanent neighbour entries both ways. It does not wait for the links
// to come up: the caller polls link state (src/net/link-wait.ts), off the thread pool.
// Man pages: rtnetlink(7), network_namespaces(7), veth(4), bridge(8) (isolated ports).
#pragma once

#include <cstdint>
#include <string>

#include "rtnl.h"

namespace hearth_net {

struct InstanceSpec {
  int gwNsFd = -1;
  int bridgeIndex = 0;     // inner bridge ifindex in the gateway ns
  std::string gwIfName;    // gateway-side veth name (unique in the gateway ns)
  std::string instIfName;  // instance-side name (e.g. "eth0")
  uint32_t address = 0;    // network order; the instance gets it as a /32
  uint32_t gateway = 0;    // network order; default route via it
};

struct InstanceResult {
  int netnsFd = -1;
  int gwIfIndex = 0;
  // rtnetlink sockets in the instance and the gateway namespace, handed over for the caller's
  // link-state checks (it closes them)
  int instRtnlFd = -1;
  int gwRtnlFd = -1;
  const char *failedCall = nullptr;
};

/** Returns 0 or -errno; on failure nothing is left (veth deleted, netns fd closed). */
int connectInstance(const InstanceSpec &spec, InstanceResult *out);

}  // namespace hearth_net
