// Connects a fresh instance network namespace to a gateway's inner bridge with one veth pair.
// Man pages: rtnetlink(7), network_namespaces(7), veth(4), bridge(8).
// The links are not usable yet when this returns: a new veth has no qdisc until the kernel's
// linkwatch activates it (packets sent before are dropped, so a first TCP SYN is retransmitted
// after ~1 s). The caller waits for operstate UP and bridge port FORWARDING from TypeScript.
#include "instance.h"

#include <errno.h>
#include <linux/if.h>
#include <unistd.h>

#include <cstring>

#include "netns.h"

namespace hearth_net {

int connectInstance(const InstanceSpec &spec, InstanceResult *out) {
  NsTask inst;
  inst.unshareNet = true;
  inst.openNs = true;
  inst.openRtnl = true;
  // No IPv6 on links made in the instance ns: no DAD/MLD work per veth, no link-local paths.
  inst.writePath = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
  inst.writeValue = "1";
  inst.writeIgnoreMissing = true;
  int rc = runNsTask(inst);
  if (rc < 0) {
    out->failedCall = inst.failedCall;
    return rc;
  }
  Rtnl instNl(inst.sockFd);
  int gwSock = -1;
  rc = rtnlIn(spec.gwNsFd, &gwSock, &out->failedCall);
  if (rc < 0) {
    close(inst.nsFd);
    return rc;
  }
  Rtnl gwNl(gwSock);
  int gwIndex = 0;
  auto failWith = [&](int err, const char *call) {
    out->failedCall = call;
    if (gwIndex > 0) deleteLink(gwNl, gwIndex);  // removes both ends
    close(inst.nsFd);
    return err;
  };

  // The peer cannot be created up (veth_open() fails with ENOTCONN before the pair is linked).
  // Every address in the inner subnet has a fixed MAC (02:68:a:b:c:d), so both sides get
  // PERMANENT neighbour entries instead of ARP: nothing to resolve on the first packet, no stale
  // entries when an address is reused, and no entries counted against the kernel's neighbour
  // table limits (gc_thresh3 is global across namespaces: ~1024 entries by default).
  uint8_t instMac[6], gwMac[6];
  macForAddress(spec.address, instMac);
  macForAddress(spec.gateway, gwMac);
  rc = createVeth(gwNl, spec.gwIfName, spec.bridgeIndex, true, spec.instIfName, inst.nsFd, false, instMac);
  if (rc < 0) return failWith(rc, "RTM_NEWLINK veth");
  LinkInfo gwLink;
  rc = getLink(gwNl, spec.gwIfName, 0, &gwLink);
  if (rc < 0) return failWith(rc, "RTM_GETLINK gateway side");
  gwIndex = gwLink.index;
  rc = setBridgePortIsolated(gwNl, gwIndex, true);
  if (rc < 0) return failWith(rc, "RTM_SETLINK isolated");
  rc = addNeighbor(gwNl, spec.bridgeIndex, spec.address, instMac);
  if (rc < 0) return failWith(rc, "RTM_NEWNEIGH gateway side");

  rc = setLink(instNl, 1 /* lo */, 1, -1);
  if (rc < 0) return failWith(rc, "RTM_NEWLINK lo up");
  LinkInfo instLink;
  rc = getLink(instNl, spec.instIfName, 0, &instLink);
  if (rc < 0) return failWith(rc, "RTM_GETLINK instance side");
  rc = setLink(instNl, instLink.index, 1, -1);
  if (rc < 0) return failWith(rc, "RTM_NEWLINK instance up");
  // A /32 and an on-link default route: the instance has no neighbours but the gateway.
  rc = addAddress(instNl, instLink.index, spec.address, 32);
  if (rc < 0) return failWith(rc, "RTM_NEWADDR");
  rc = addNeighbor(instNl, instLink.index, spec.gateway, gwMac);
  if (rc < 0) return failWith(rc, "RTM_NEWNEIGH instance side");
  rc = addRoute(instNl, 0, 0, spec.gateway, instLink.index, true);
  if (rc < 0) return failWith(rc, "RTM_NEWROUTE default");

  out->netnsFd = inst.nsFd;
  out->instRtnlFd = instNl.release();
  out->gwRtnlFd = gwNl.release();
  out->gwIfIndex = gwIndex;
  return 0;
}

}  // namespace hearth_net
