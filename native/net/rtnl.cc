// rtnetlink client used for links, addresses and routes in gateway and instance namespaces.
// Man pages: netlink(7), rtnetlink(7), netlink(3), rtnetlink(3), socket(2), send(2), recv(2).
// Kernel attribute layouts: linux/if_link.h (IFLA_*, IFLA_BRPORT_*), linux/veth.h (VETH_INFO_PEER),
// linux/if_addr.h (IFA_*), linux/rtnetlink.h (RTA_*), linux/neighbour.h (NDA_*).
#include "rtnl.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hearth/eintr.h"

namespace hearth_net {

NlMsg::NlMsg(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
  hdr()->nlmsg_type = type;
  hdr()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
}

void NlMsg::pad() { buf_.resize(NLMSG_ALIGN(buf_.size()), 0); }

void *NlMsg::putHeader(const void *data, size_t len) {
  pad();
  size_t off = buf_.size();
  buf_.resize(off + len);
  std::memcpy(buf_.data() + off, data, len);
  pad();
  return buf_.data() + off;
}

void NlMsg::attr(uint16_t type, const void *data, size_t len) {
  pad();
  size_t off = buf_.size();
  buf_.resize(off + NLA_HDRLEN + len, 0);
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  std::memcpy(buf_.data() + off, &a, sizeof a);
  if (len > 0) std::memcpy(buf_.data() + off + NLA_HDRLEN, data, len);
  pad();
}

size_t NlMsg::beginNest(uint16_t type) {
  pad();
  size_t off = buf_.size();
  attr(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return off;
}

void NlMsg::endNest(size_t offset) {
  pad();
  nlattr a;
  std::memcpy(&a, buf_.data() + offset, sizeof a);
  a.nla_len = static_cast<uint16_t>(buf_.size() - offset);
  std::memcpy(buf_.data() + offset, &a, sizeof a);
}

Attrs::Attrs(const void *data, size_t len, size_t maxType) : byType(maxType + 1, nullptr) {
  const char *p = static_cast<const char *>(data);
  while (len >= NLA_HDRLEN) {
    const nlattr *a = reinterpret_cast<const nlattr *>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) break;
    size_t type = a->nla_type & NLA_TYPE_MASK;
    if (type <= maxType) byType[type] = a;
    size_t step = NLA_ALIGN(a->nla_len);
    if (step > len) break;
    p += step;
    len -= step;
  }
}

std::string attrStr(const nlattr *a) {
  const char *s = static_cast<const char *>(attrData(a));
  size_t n = attrLen(a);
  while (n > 0 && s[n - 1] == '\0') n--;
  return std::string(s, n);
}

Rtnl::~Rtnl() {
  if (fd_ >= 0) ::close(fd_);
}

int Rtnl::open(int *fd) {
  int s = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  *fd = s;
  return 0;
}

int Rtnl::send(NlMsg &m) {
  m.hdr()->nlmsg_len = static_cast<uint32_t>(m.size());
  m.hdr()->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = hearth::RetryEintr(
      [&] { return ::sendto(fd_, m.hdr(), m.size(), 0, reinterpret_cast<sockaddr *>(&kernel), sizeof kernel); });
  return n < 0 ? -errno : 0;
}

int Rtnl::request(NlMsg &m) {
  m.hdr()->nlmsg_flags |= NLM_F_ACK;
  return exchange(m, nullptr);
}

int Rtnl::query(NlMsg &m, const std::function<void(const nlmsghdr *)> &cb) { return exchange(m, &cb); }

int Rtnl::exchange(NlMsg &m, const std::function<void(const nlmsghdr *)> *cb) {
  int rc = send(m);
  if (rc < 0) return rc;
  uint32_t seq = m.hdr()->nlmsg_seq;
  bool dump = (m.hdr()->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  for (;;) {
    ssize_t n = hearth::RetryEintr([&] { return ::recv(fd_, rx_.data(), rx_.size(), 0); });
    if (n < 0) return -errno;
    size_t len = static_cast<size_t>(n);
    for (const nlmsghdr *h = reinterpret_cast<const nlmsghdr *>(rx_.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const nlmsgerr *e = static_cast<const nlmsgerr *>(NLMSG_DATA(h));
        return e->error;  // 0 on ack, -errno on failure
      }
      if (cb == nullptr) continue;  // an ack is still to come
      (*cb)(h);
      if (!dump) return 0;
    }
  }
}

// An ifinfomsg request for link `index` (0: none, e.g. by name or a dump); `up` >= 0 sets IFF_UP.
static NlMsg linkMsg(uint16_t type, uint16_t flags, int index, unsigned char family = AF_UNSPEC, int up = -1) {
  NlMsg m(type, flags);
  ifinfomsg ifi{};
  ifi.ifi_family = family;
  ifi.ifi_index = index;
  if (up >= 0) {
    ifi.ifi_flags = up ? IFF_UP : 0;
    ifi.ifi_change = IFF_UP;
  }
  m.putHeader(&ifi, sizeof ifi);
  return m;
}

static void parseLink(const nlmsghdr *h, LinkInfo *out) {
  const ifinfomsg *ifi = static_cast<const ifinfomsg *>(NLMSG_DATA(h));
  out->index = ifi->ifi_index;
  out->flags = ifi->ifi_flags;
  Attrs tb(reinterpret_cast<const char *>(ifi) + NLMSG_ALIGN(sizeof *ifi), h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi),
           IFLA_MAX);
  if (auto a = tb.get(IFLA_IFNAME)) out->name = attrStr(a);
  if (auto a = tb.get(IFLA_MASTER)) out->master = static_cast<int>(attrU32(a));
  if (auto a = tb.get(IFLA_OPERSTATE)) out->operstate = attrU8(a);
  if (auto li = tb.get(IFLA_LINKINFO)) {
    Attrs info(attrData(li), attrLen(li), IFLA_INFO_MAX);
    if (auto k = info.get(IFLA_INFO_KIND)) out->kind = attrStr(k);
    if (auto k = info.get(IFLA_INFO_SLAVE_KIND)) out->slaveKind = attrStr(k);
    if (auto sd = info.get(IFLA_INFO_SLAVE_DATA); sd && out->slaveKind == "bridge") {
      Attrs port(attrData(sd), attrLen(sd), IFLA_BRPORT_MAX);
      if (auto st = port.get(IFLA_BRPORT_STATE)) out->brportState = attrU8(st);
    }
  }
}

int getLink(Rtnl &nl, const std::string &name, int index, LinkInfo *out) {
  NlMsg m = linkMsg(RTM_GETLINK, 0, index);
  if (index == 0) m.attrStr(IFLA_IFNAME, name);
  m.attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  bool got = false;
  int rc = nl.query(m, [&](const nlmsghdr *h) {
    if (h->nlmsg_type == RTM_NEWLINK) {
      parseLink(h, out);
      got = true;
    }
  });
  if (rc < 0) return rc;
  return got ? 0 : -ENODEV;
}

int listLinks(Rtnl &nl, std::vector<LinkInfo> *out) {
  NlMsg m = linkMsg(RTM_GETLINK, NLM_F_DUMP, 0);
  m.attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return nl.query(m, [&](const nlmsghdr *h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    LinkInfo li;
    parseLink(h, &li);
    out->push_back(std::move(li));
  });
}

int listAddresses(Rtnl &nl, std::vector<AddrInfo> *out) {
  NlMsg m(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  m.putHeader(&ifa, sizeof ifa);
  return nl.query(m, [&](const nlmsghdr *h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    const ifaddrmsg *a = static_cast<const ifaddrmsg *>(NLMSG_DATA(h));
    if (a->ifa_family != AF_INET) return;
    Attrs tb(reinterpret_cast<const char *>(a) + NLMSG_ALIGN(sizeof *a), h->nlmsg_len - NLMSG_LENGTH(sizeof *a),
             IFA_MAX);
    const nlattr *addr = tb.get(IFA_LOCAL) ? tb.get(IFA_LOCAL) : tb.get(IFA_ADDRESS);
    if (!addr || attrLen(addr) != 4) return;
    AddrInfo ai;
    ai.index = static_cast<int>(a->ifa_index);
    ai.address = attrU32(addr);
    ai.prefixLen = a->ifa_prefixlen;
    out->push_back(ai);
  });
}

int createBridge(Rtnl &nl, const std::string &name, const uint8_t *mac) {
  NlMsg m = linkMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  m.attrStr(IFLA_IFNAME, name);
  if (mac) m.attr(IFLA_ADDRESS, mac, 6);
  size_t li = m.beginNest(IFLA_LINKINFO);
  m.attrStr(IFLA_INFO_KIND, "bridge");
  m.endNest(li);
  return nl.request(m);
}

int createVeth(Rtnl &nl, const std::string &name, int master, bool up, const std::string &peerName, int peerNsFd,
               bool peerUp, const uint8_t *peerMac) {
  NlMsg m = linkMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, AF_UNSPEC, up ? 1 : -1);
  m.attrStr(IFLA_IFNAME, name);
  if (master > 0) m.attrU32(IFLA_MASTER, static_cast<uint32_t>(master));
  size_t li = m.beginNest(IFLA_LINKINFO);
  m.attrStr(IFLA_INFO_KIND, "veth");
  size_t data = m.beginNest(IFLA_INFO_DATA);
  size_t peer = m.beginNest(VETH_INFO_PEER);
  ifinfomsg pifi{};
  pifi.ifi_family = AF_UNSPEC;
  if (peerUp) {
    pifi.ifi_flags = IFF_UP;
    pifi.ifi_change = IFF_UP;
  }
  m.putHeader(&pifi, sizeof pifi);
  m.attrStr(IFLA_IFNAME, peerName);
  if (peerMac) m.attr(IFLA_ADDRESS, peerMac, 6);
  if (peerNsFd >= 0) m.attrU32(IFLA_NET_NS_FD, static_cast<uint32_t>(peerNsFd));
  m.endNest(peer);
  m.endNest(data);
  m.endNest(li);
  return nl.request(m);
}

int setLink(Rtnl &nl, int index, int up, int master) {
  NlMsg m = linkMsg(RTM_NEWLINK, 0, index, AF_UNSPEC, up);
  if (master >= 0) m.attrU32(IFLA_MASTER, static_cast<uint32_t>(master));
  return nl.request(m);
}

int setBridgePortIsolated(Rtnl &nl, int index, bool isolated) {
  NlMsg m = linkMsg(RTM_SETLINK, 0, index, AF_BRIDGE);
  size_t p = m.beginNest(IFLA_PROTINFO);
  m.attrU8(IFLA_BRPORT_ISOLATED, isolated ? 1 : 0);
  m.endNest(p);
  return nl.request(m);
}

int addAddress(Rtnl &nl, int index, uint32_t addr, int prefixLen) {
  NlMsg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefixLen);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(index);
  m.putHeader(&ifa, sizeof ifa);
  m.attr(IFA_LOCAL, &addr, 4);
  m.attr(IFA_ADDRESS, &addr, 4);
  return nl.request(m);
}

int addRoute(Rtnl &nl, uint32_t dst, int dstLen, uint32_t gateway, int oif, bool onlink) {
  NlMsg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_dst_len = static_cast<unsigned char>(dstLen);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  if (onlink) rt.rtm_flags = RTNH_F_ONLINK;
  m.putHeader(&rt, sizeof rt);
  if (dstLen > 0) m.attr(RTA_DST, &dst, 4);
  if (gateway) m.attr(RTA_GATEWAY, &gateway, 4);
  if (oif > 0) m.attrU32(RTA_OIF, static_cast<uint32_t>(oif));
  return nl.request(m);
}

int addNeighbor(Rtnl &nl, int index, uint32_t ip, const uint8_t *mac) {
  NlMsg m(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  ndmsg nd{};
  nd.ndm_family = AF_INET;
  nd.ndm_ifindex = index;
  nd.ndm_state = NUD_PERMANENT;
  nd.ndm_type = RTN_UNICAST;
  m.putHeader(&nd, sizeof nd);
  m.attr(NDA_DST, &ip, 4);
  m.attr(NDA_LLADDR, mac, 6);
  return nl.request(m);
}

void macForAddress(uint32_t ip, uint8_t mac[6]) {
  mac[0] = 0x02;
  mac[1] = 0x68;
  std::memcpy(mac + 2, &ip, 4);  // network order: the dotted quad's bytes
}

int deleteLink(Rtnl &nl, int index) {
  NlMsg m = linkMsg(RTM_DELLINK, 0, index);
  return nl.request(m);
}

int setLinkGroup(Rtnl &nl, int index, uint32_t group) {
  NlMsg m = linkMsg(RTM_NEWLINK, 0, index);
  m.attrU32(IFLA_GROUP, group);
  return nl.request(m);
}

int deleteLinkGroup(Rtnl &nl, uint32_t group) {
  NlMsg m = linkMsg(RTM_DELLINK, 0, 0);
  m.attrU32(IFLA_GROUP, group);
  return nl.request(m);
}

}  // namespace hearth_net
