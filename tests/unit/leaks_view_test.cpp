// The leaks view as an operator reads it: a server's leaks by service and client host, a
// client's by destination, the largest groups first, cut to the terminal with nothing hidden.
#include "sinks/leaks_view.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "event_builder.hpp"
#include "record_fixtures.hpp"

namespace tcptrail {
namespace {

using fixtures::lines_of;
using testing::ipv4;
using testing::kMs;

Suspect close_wait(const char* client, std::uint16_t cport, std::uint64_t age_ms,
                   std::uint32_t pid = 100) {
  Suspect s;
  s.conn.role = Role::kServer;
  s.conn.laddr = ipv4("10.0.0.1");
  s.conn.lport = 8080;
  s.conn.raddr = ipv4(client);
  s.conn.rport = cport;
  s.conn.owner = testing::owner(pid, "php-fpm");
  s.leak.kind = LeakKind::kCloseWait;
  s.leak.age_ns = age_ms * kMs;
  return s;
}

Suspect fin_wait2(const char* server, std::uint16_t sport, std::uint16_t cport) {
  Suspect s;
  s.conn.role = Role::kClient;
  s.conn.laddr = ipv4("10.0.0.1");
  s.conn.lport = cport;
  s.conn.raddr = ipv4(server);
  s.conn.rport = sport;
  s.conn.owner = testing::owner(200, "curl");
  s.leak.kind = LeakKind::kFinWait2;
  s.leak.age_ns = 90'000 * kMs;
  return s;
}

std::size_t rows_starting(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  for (const std::string& line : lines_of(text)) {
    n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

TEST(LeaksView, ServerLeaksGroupByServiceAndClientHostNotEphemeralPort) {
  std::vector<Suspect> suspects;
  for (std::uint16_t port = 40000; port < 40030; ++port) {
    suspects.push_back(close_wait("192.0.2.7", port, 31'000));
  }
  suspects.push_back(close_wait("192.0.2.9", 50000, 45'000));
  suspects.push_back(fin_wait2("198.51.100.3", 443, 41000));
  suspects.push_back(fin_wait2("198.51.100.3", 443, 41001));
  std::ostringstream out;
  LeaksView view(out, LeakConfig{}, false);
  view.render(suspects);
  const std::string text = out.str();
  EXPECT_EQ(rows_starting(text, "10.0.0.1:8080 <- 192.0.2.7 "), 1U) << text;
  EXPECT_NE(text.find("10.0.0.1:8080 <- 192.0.2.7               close_wait      30"),
            std::string::npos)
      << text;
  EXPECT_EQ(rows_starting(text, "10.0.0.1:8080 <- 192.0.2.9 "), 1U) << text;
  EXPECT_EQ(text.find("40001"), std::string::npos) << "no row per client port\n" << text;
  EXPECT_NE(text.find("198.51.100.3:443                         fin_wait2        2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("total: 2 group(s), 31 socket(s)"), std::string::npos) << text;
  // The largest group first, whatever its age.
  EXPECT_LT(text.find("<- 192.0.2.7"), text.find("<- 192.0.2.9")) << text;
}

TEST(LeaksView, CutToTheTerminalWithTheRestCountedAndATotal) {
  std::vector<Suspect> suspects;
  // 40 client hosts, host i with i+1 leaks: the largest are shown.
  std::size_t sockets = 0;
  for (int host = 0; host < 40; ++host) {
    const std::string addr = "192.0.2." + std::to_string(host + 1);
    for (int i = 0; i <= host; ++i) {
      suspects.push_back(close_wait(addr.c_str(), static_cast<std::uint16_t>(40000 + i), 31'000,
                                    static_cast<std::uint32_t>(100 + host)));
      ++sockets;
    }
  }
  std::ostringstream out;
  LeaksView view(out, LeakConfig{}, false);
  view.render(suspects, 40);
  const std::string text = out.str();
  EXPECT_LE(lines_of(text).size(), 39U) << "the last line left empty\n" << text;
  const std::size_t shown = rows_starting(text, "10.0.0.1:8080 <- ");
  EXPECT_GE(shown, 5U) << text;
  EXPECT_LT(shown, 40U) << text;
  EXPECT_NE(text.find("10.0.0.1:8080 <- 192.0.2.40 "), std::string::npos) << "the largest\n"
                                                                          << text;
  EXPECT_EQ(text.find("10.0.0.1:8080 <- 192.0.2.1 "), std::string::npos) << "the smallest\n"
                                                                         << text;
  std::size_t hidden = 0;
  for (std::size_t host = 40 - shown; host-- > 0;) {
    hidden += host + 1;
  }
  EXPECT_NE(text.find("... and " + std::to_string(40 - shown) + " more group(s), " +
                      std::to_string(hidden) + " socket(s)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("total: 40 group(s), " + std::to_string(sockets) + " socket(s)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(none)"), std::string::npos) << "no client leaks\n" << text;

  std::ostringstream unlimited;
  LeaksView all(unlimited, LeakConfig{}, false);
  all.render(suspects);
  EXPECT_EQ(rows_starting(unlimited.str(), "10.0.0.1:8080 <- "), 40U);
  EXPECT_EQ(unlimited.str().find("more group"), std::string::npos);
}

TEST(LeaksView, ATinyTerminalStillShowsOneRowOfEachTable) {
  std::vector<Suspect> suspects = {close_wait("192.0.2.7", 40000, 31'000),
                                   close_wait("192.0.2.8", 40000, 31'000),
                                   fin_wait2("198.51.100.3", 443, 41000)};
  std::ostringstream out;
  LeaksView view(out, LeakConfig{}, false);
  view.render(suspects, 5);
  const std::string text = out.str();
  EXPECT_EQ(rows_starting(text, "10.0.0.1:8080 <- "), 1U) << text;
  EXPECT_EQ(rows_starting(text, "198.51.100.3:443"), 1U) << text;
  EXPECT_NE(text.find("... and 1 more group(s), 1 socket(s)"), std::string::npos) << text;
}

}  // namespace
}  // namespace tcptrail
