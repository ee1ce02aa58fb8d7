#include "tcptrail/filter.hpp"

#include <gtest/gtest.h>

#include <string_view>

#include "event_builder.hpp"

namespace tcptrail {
namespace {

Connection conn(const char* laddr, std::uint16_t lport, const char* raddr, std::uint16_t rport,
                std::uint32_t pid = 10, const char* comm = "nginx") {
  Connection c;
  const bool v6 = std::string_view(laddr).find(':') != std::string_view::npos;
  c.laddr = v6 ? testing::ipv6(laddr) : testing::ipv4(laddr);
  c.raddr = v6 ? testing::ipv6(raddr) : testing::ipv4(raddr);
  c.lport = lport;
  c.rport = rport;
  c.owner = testing::owner(pid, comm);
  return c;
}

// Found by cidr_fuzz: inet_pton stopped at the NUL and accepted the address before it.
TEST(Cidr, RejectsTextWithANul) {
  using namespace std::string_view_literals;
  EXPECT_FALSE(Cidr::parse("::\0\0\0\0\x13"sv));
  EXPECT_FALSE(Cidr::parse("10.0.0.1\0/8"sv));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/8\0"sv));
  EXPECT_TRUE(Cidr::parse("10.0.0.0/8"sv));
}

TEST(Cidr, ParsesAddressesAndPrefixes) {
  EXPECT_TRUE(Cidr::parse("10.0.0.0/8"));
  EXPECT_TRUE(Cidr::parse("127.0.0.1"));
  EXPECT_TRUE(Cidr::parse("fe80::/10"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/x"));
  EXPECT_FALSE(Cidr::parse("::1/129"));
  EXPECT_FALSE(Cidr::parse("300.1.1.1"));
  // Host bits set: not silently widened.
  EXPECT_FALSE(Cidr::parse("10.0.0.1/24"));
  EXPECT_FALSE(Cidr::parse("192.168.1.0/23"));
  EXPECT_FALSE(Cidr::parse("fe80::1/64"));
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.1/120"));
  EXPECT_TRUE(Cidr::parse("::ffff:10.0.0.0/120"));
  EXPECT_TRUE(Cidr::parse("10.0.0.1/32"));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0"));
}

TEST(Cidr, ContainsHonoursPrefixAndMappedAddresses) {
  auto net = *Cidr::parse("10.1.0.0/16");
  EXPECT_TRUE(net.contains(testing::ipv4("10.1.200.3")));
  EXPECT_FALSE(net.contains(testing::ipv4("10.2.0.1")));
  EXPECT_TRUE(net.contains(testing::ipv6("::ffff:10.1.2.3")));
  auto odd = *Cidr::parse("192.168.0.0/23");
  EXPECT_TRUE(odd.contains(testing::ipv4("192.168.1.255")));
  EXPECT_FALSE(odd.contains(testing::ipv4("192.168.2.0")));
  EXPECT_TRUE(Cidr::parse("fe80::/10")->contains(testing::ipv6("fe80::1")));
  EXPECT_FALSE(Cidr::parse("fe80::/10")->contains(testing::ipv4("10.0.0.1")));
}

TEST(Filter, MatchesOwnerPortsAndAddresses) {
  Filter f;
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 80, "127.0.0.1", 5000)));
  f.pids = {10};
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 80, "127.0.0.1", 5000)));
  EXPECT_FALSE(f.matches(conn("127.0.0.1", 80, "127.0.0.1", 5000, 11)));
  f = Filter{};
  f.ports = {5000};
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 80, "127.0.0.1", 5000)));
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 5000, "127.0.0.1", 80)));
  EXPECT_FALSE(f.matches(conn("127.0.0.1", 81, "127.0.0.1", 82)));
  f = Filter{};
  f.lports = {80};
  f.rports = {5000};
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 80, "127.0.0.1", 5000)));
  EXPECT_FALSE(f.matches(conn("127.0.0.1", 5000, "127.0.0.1", 80)));
  f = Filter{};
  f.addrs = {*Cidr::parse("10.0.0.0/8")};
  EXPECT_TRUE(f.matches(conn("192.168.1.1", 1, "10.9.9.9", 2)));
  EXPECT_FALSE(f.matches(conn("192.168.1.1", 1, "11.9.9.9", 2)));
  f = Filter{};
  f.family = 6;
  EXPECT_TRUE(f.matches(conn("::1", 1, "::1", 2)));
  EXPECT_FALSE(f.matches(conn("127.0.0.1", 1, "127.0.0.1", 2)));
  f = Filter{};
  f.comms = {"curl"};
  EXPECT_FALSE(f.matches(conn("127.0.0.1", 1, "127.0.0.1", 2)));
  EXPECT_TRUE(f.matches(conn("127.0.0.1", 1, "127.0.0.1", 2, 5, "curl")));
}

TEST(Filter, ContainersByIdOrPrefixAndUnitsByName) {
  const std::string id = "4f1d3b9a0c2e" + std::string(52, 'a');
  CgroupIdentity docker;
  docker.container_id = id;
  docker.unit = "docker-" + id + ".scope";
  CgroupIdentity nginx;
  nginx.unit = "nginx.service";

  Filter none;
  EXPECT_TRUE(none.matches_identity(nullptr));
  EXPECT_TRUE(none.matches_identity(&nginx));

  Filter by_prefix;
  by_prefix.containers = {"4f1d3b9a0c2e"};
  EXPECT_TRUE(by_prefix.matches_identity(&docker));
  EXPECT_FALSE(by_prefix.matches_identity(&nginx));
  EXPECT_FALSE(by_prefix.matches_identity(nullptr));  // not known is not a match
  Filter by_full;
  by_full.containers = {"9" + std::string(11, '0'), id};
  EXPECT_TRUE(by_full.matches_identity(&docker));
  by_full.containers = {"4f1d3b9a0c2f"};
  EXPECT_FALSE(by_full.matches_identity(&docker));

  Filter by_unit;
  by_unit.units = {"nginx.service"};
  EXPECT_TRUE(by_unit.matches_identity(&nginx));
  EXPECT_FALSE(by_unit.matches_identity(&docker));
  EXPECT_FALSE(by_unit.matches_identity(nullptr));
  by_unit.containers = {"4f1d3b9a0c2e"};  // both asked for: both must hold
  EXPECT_FALSE(by_unit.matches_identity(&nginx));
  EXPECT_FALSE(by_unit.matches_identity(&docker));
}

}  // namespace
}  // namespace tcptrail
