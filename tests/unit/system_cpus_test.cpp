#include "system/cpus.hpp"

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace tcptrail::sys {
namespace {

using Cpus = std::vector<std::uint32_t>;

TEST(SystemCpus, ParsesTheKernelFormat) {
  EXPECT_EQ(parse_cpu_list("0\n"), Cpus{0});
  EXPECT_EQ(parse_cpu_list("0-1\n"), (Cpus{0, 1}));
  EXPECT_EQ(parse_cpu_list("0-2,5,7-8"), (Cpus{0, 1, 2, 5, 7, 8}));
  EXPECT_EQ(parse_cpu_list("3"), Cpus{3});
}

TEST(SystemCpus, RejectsMalformedText) {
  for (const char* text : {"", "\n", "a", "1-", "-1", "3-1", "1,,2", "1,", "0-1,1", "2,1", "1 2",
                           "0x1", "99999999999"}) {
    EXPECT_FALSE(parse_cpu_list(text)) << '"' << text << '"';
  }
}

// Found by cpu_list_fuzz: the range loop's `cpu <= last` never failed for UINT32_MAX.
TEST(SystemCpus, RejectsCpuNumbersBeyondAnyKernel) {
  for (const char* text : {"0-4294967295", "4294967295", "4294967294-4294967295", "65536",
                           "0-65536", "1,65536-70000"}) {
    EXPECT_FALSE(parse_cpu_list(text)) << '"' << text << '"';
  }
  EXPECT_EQ(parse_cpu_list("65535"), Cpus{65535});
  EXPECT_EQ(parse_cpu_list("0-65535").value().size(), 65536U);
}

TEST(SystemCpus, ReadsTheOnlineCpus) {
  std::ifstream in("/sys/devices/system/cpu/online");
  std::stringstream text;
  text << in.rdbuf();
  auto expected = parse_cpu_list(text.str());
  ASSERT_TRUE(expected);
  EXPECT_EQ(online_cpus(), *expected);
  EXPECT_GE(online_cpus().size(), 1U);
  EXPECT_LE(online_cpus().size(), std::max(1U, std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace tcptrail::sys
