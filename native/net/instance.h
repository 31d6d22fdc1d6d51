// Per-instance network plumbing in one call: a new netns, a veth into the gateway's bridge, address,
// on-link default route, permanent neighbour entries both ways, and a wait until both ends report operstate UP (and the bridge port forwards).
// Man pages: rtnetlink(7), network_namespaces(7), veth(4), bridge(8) (isolated ports), clock_gettime(2).
#pragma once

#include <cstdint>
#include <string>

#include "rtnl.h"

namespace hearth_net {

struct InstanceSpec {
  int gwNsFd = -1;
  int bridgeIndex = 0;       // inner bridge ifindex in the gateway ns
  std::string gwIfName;      // gateway-side veth name (unique in the gateway ns)
  std::string instIfName;    // instance-side name (e.g. "eth0")
  uint32_t address = 0;      // network order; the instance gets it as a /32
  uint32_t gateway = 0;      // network order; default route via it
  int timeoutMs = 3000;
};

struct InstanceResult {
  int netnsFd = -1;
  int gwIfIndex = 0;
  double waitUs = 0;  // time spent waiting for the links to come up
  const char* failedCall = nullptr;
};

/** Returns 0 or -errno; on failure nothing is left (veth deleted, netns fd closed). */
int connectInstance(const InstanceSpec& spec, InstanceResult* out);

/** Polls until link `index` in nl's ns has operstate UP (and, if forwarding, bridge port state FORWARDING). */
int waitLinkUp(Rtnl& nl, int index, bool forwarding, int timeoutMs, double* waitedUs);

double monotonicUs();

}  // namespace hearth_net
