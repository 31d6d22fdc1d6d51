// A small rtnetlink client: message building, request/ack, dumps, and the handful of link,
// address and route operations the gateways need. Plain C++; every call returns 0 or -errno.
// Man pages: netlink(7), rtnetlink(7), netlink(3), rtnetlink(3).
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace hearth_net {

/** One netlink request being built: header, family struct, then attributes. */
class NlMsg {
 public:
  NlMsg(uint16_t type, uint16_t flags);
  /** Appends a fixed family header (ifinfomsg, ifaddrmsg, rtmsg); returns a pointer valid until the next append. */
  void *putHeader(const void *data, size_t len);
  void attr(uint16_t type, const void *data, size_t len);
  void attrU8(uint16_t type, uint8_t v) { attr(type, &v, 1); }
  void attrU32(uint16_t type, uint32_t v) { attr(type, &v, 4); }
  void attrS32(uint16_t type, int32_t v) { attr(type, &v, 4); }
  void attrStr(uint16_t type, const std::string &s) { attr(type, s.c_str(), s.size() + 1); }
  /** Opens a nested attribute; returns its offset for endNest. */
  size_t beginNest(uint16_t type);
  void endNest(size_t offset);
  nlmsghdr *hdr() { return reinterpret_cast<nlmsghdr *>(buf_.data()); }
  size_t size() const { return buf_.size(); }

 private:
  void pad();
  std::vector<char> buf_;
};

/** Parsed attributes of one level: index by type, nullptr when absent. */
struct Attrs {
  std::vector<const nlattr *> byType;
  Attrs(const void *data, size_t len, size_t maxType);
  const nlattr *get(size_t type) const { return type < byType.size() ? byType[type] : nullptr; }
};
inline const void *attrData(const nlattr *a) { return reinterpret_cast<const char *>(a) + NLA_HDRLEN; }
inline size_t attrLen(const nlattr *a) { return a->nla_len - NLA_HDRLEN; }
inline uint32_t attrU32(const nlattr *a) {
  uint32_t v;
  std::memcpy(&v, attrData(a), 4);
  return v;
}
inline uint8_t attrU8(const nlattr *a) { return *static_cast<const uint8_t *>(attrData(a)); }
std::string attrStr(const nlattr *a);

/** A NETLINK_ROUTE socket (owned: closed on destruction). Not thread-safe: one caller at a time. */
class Rtnl {
 public:
  explicit Rtnl(int fd) : fd_(fd) {}
  ~Rtnl();
  Rtnl(const Rtnl &) = delete;
  Rtnl &operator=(const Rtnl &) = delete;
  /** Opens a socket in the caller's network namespace. */
  static int open(int *fd);
  int fd() const { return fd_; }
  /** Gives up ownership: returns the fd, which the destructor then leaves open. */
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  /** Sends with NLM_F_ACK and waits for the ack; 0 or -errno from the kernel. */
  int request(NlMsg &m);
  /** Sends and passes every reply message to cb until NLMSG_DONE (dump) or the single reply. */
  int query(NlMsg &m, const std::function<void(const nlmsghdr *)> &cb);

 private:
  int send(NlMsg &m);
  /** Sends m and reads replies until the ack/error, NLMSG_DONE, or (cb set, no dump) the single reply. */
  int exchange(NlMsg &m, const std::function<void(const nlmsghdr *)> *cb);
  int fd_;
  uint32_t seq_ = 0;
  std::vector<char> rx_ = std::vector<char>(65536);
};

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;       // IFLA_INFO_KIND ("veth", "bridge"), empty if none
  std::string slaveKind;  // IFLA_INFO_SLAVE_KIND ("bridge" when a bridge port)
  int master = 0;
  unsigned flags = 0;    // IFF_*
  int operstate = 0;     // IF_OPER_*
  int brportState = -1;  // BR_STATE_* when a bridge port, else -1
};

struct AddrInfo {
  int index = 0;
  uint32_t address = 0;  // network byte order
  int prefixLen = 0;
};

int getLink(Rtnl &nl, const std::string &name, int index, LinkInfo *out);  // by name if index == 0
int listLinks(Rtnl &nl, std::vector<LinkInfo> *out);
int listAddresses(Rtnl &nl, std::vector<AddrInfo> *out);
/** Creates a bridge; mac (6 bytes) fixes its address so it never follows its ports (nullptr: kernel picks). */
int createBridge(Rtnl &nl, const std::string &name, const uint8_t *mac);
/** Creates veth `name` in nl's namespace (up if `up`, enslaved to `master` if > 0) with peer `peerName` put into
 * peerNsFd (-1: same namespace). peerUp must be false (the kernel refuses: ENOTCONN); bring the peer up afterwards. */
int createVeth(Rtnl &nl, const std::string &name, int master, bool up, const std::string &peerName, int peerNsFd,
               bool peerUp, const uint8_t *peerMac = nullptr);
/** Changes IFF_UP and/or the master (master: -1 leave, 0 release, >0 enslave). */
int setLink(Rtnl &nl, int index, int up, int master);
int setBridgePortIsolated(Rtnl &nl, int index, bool isolated);
int addAddress(Rtnl &nl, int index, uint32_t addr, int prefixLen);
/** Adds an IPv4 route; gateway 0 means a link-scope route through `oif`; onlink: the gateway is on `oif` whatever the
 * addresses say. */
int addRoute(Rtnl &nl, uint32_t dst, int dstLen, uint32_t gateway, int oif, bool onlink = false);
/** Adds or replaces a PERMANENT IPv4 neighbour entry (exempt from the kernel's global neighbour-table thresholds). */
int addNeighbor(Rtnl &nl, int index, uint32_t ip, const uint8_t *mac);
/** The MAC Hearth gives the holder of an inner address: 02:68 followed by the 4 address bytes. */
void macForAddress(uint32_t ip, uint8_t mac[6]);
int deleteLink(Rtnl &nl, int index);
int setLinkGroup(Rtnl &nl, int index, uint32_t group);
/** Deletes every link of a group in one kernel batch (one RCU wait for all, not one per link). */
int deleteLinkGroup(Rtnl &nl, uint32_t group);

}  // namespace hearth_net
