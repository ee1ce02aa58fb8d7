#include "system/port_range.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace tcptrail::sys {
namespace {

TEST(SystemPortRange, ParsesTheKernelFormat) {
  auto range = parse_port_range("32768\t60999\n");
  ASSERT_TRUE(range);
  EXPECT_EQ(*range, (PortRange{32768, 60999}));
  EXPECT_EQ(range->size(), 28232U);

  EXPECT_EQ(parse_port_range("40000 40099")->size(), 100U);
  EXPECT_EQ(parse_port_range("  1024   1024  \n")->size(), 1U);
  EXPECT_EQ(parse_port_range("0 65535")->size(), 65536U);
}

TEST(SystemPortRange, SwapsAReversedPair) {
  auto range = parse_port_range("60999 32768");
  ASSERT_TRUE(range);
  EXPECT_EQ(*range, (PortRange{32768, 60999}));
}

TEST(SystemPortRange, RejectsMalformedText) {
  for (const char* text : {"", "\n", "32768", "32768 ", "1 2 3", "a b", "70000 1", "1 70000",
                           "-1 5", "1,2", "12ab 40", "1\t2x"}) {
    EXPECT_FALSE(parse_port_range(text)) << '"' << text << '"';
  }
}

TEST(SystemPortRange, ParsesTwReuse) {
  EXPECT_EQ(parse_tw_reuse("0\n"), 0);
  EXPECT_EQ(parse_tw_reuse("1"), 1);
  EXPECT_EQ(parse_tw_reuse("2\n"), 2);
  for (const char* text : {"", "\n", "3", "12", " 1", "1 ", "x", "-1"}) {
    EXPECT_FALSE(parse_tw_reuse(text)) << '"' << text << '"';
  }
}

TEST(SystemPortRange, ParsesTwReuseDelay) {
  EXPECT_EQ(parse_tw_reuse_delay("1000\n"), 1000U);
  EXPECT_EQ(parse_tw_reuse_delay("1"), 1U);
  EXPECT_EQ(parse_tw_reuse_delay("2147483647\n"), 2147483647U);
  for (const char* text : {"", "\n", "0", "2147483648", "-1", " 1000", "1000 ", "1e3", "x"}) {
    EXPECT_FALSE(parse_tw_reuse_delay(text)) << '"' << text << '"';
  }
}

TEST(SystemPortRange, ReadsTheCurrentNamespace) {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  std::stringstream text;
  text << in.rdbuf();
  auto expected = parse_port_range(text.str());
  ASSERT_TRUE(expected);
  EXPECT_EQ(read_port_range(), *expected);
  EXPECT_EQ(read_port_range(0), *expected);
}

}  // namespace
}  // namespace tcptrail::sys
