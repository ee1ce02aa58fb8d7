#include "sinks/text_sink.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "record_fixtures.hpp"
#include "sinks/format.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

// UTC, so that the output does not depend on the machine's time zone.
constexpr TextOptions kUtc{.utc = true};

Connection client() {
  Connection conn;
  conn.conn_id = 42;
  conn.owner.pid = 1234;
  set_comm(conn.owner, "curl");
  conn.owner.source = OwnerSource::kSyscall;
  conn.laddr = ipv4(10, 0, 0, 1);
  conn.raddr = ipv4(93, 184, 216, 34);
  conn.lport = 45678;
  conn.rport = 443;
  conn.role = Role::kClient;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 1250 * kMs;
  conn.has_handshake = true;
  conn.handshake_us = 25'100;
  set_path(conn, {TcpState::kSynSent, TcpState::kEstablished, TcpState::kFinWait1,
                  TcpState::kFinWait2, TcpState::kClose});
  conn.tx_bytes = 1536;
  conn.rx_bytes = 3'355'443;
  conn.retransmits = 2;
  conn.close = CloseKind::kActive;
  conn.time_wait = true;
  return conn;
}

Connection server() {
  Connection conn;
  conn.conn_id = 43;
  conn.owner.pid = 80;
  set_comm(conn.owner, "nginx");
  conn.owner.source = OwnerSource::kListener;
  conn.laddr = ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  conn.raddr = ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34});
  conn.lport = 443;
  conn.rport = 51000;
  conn.role = Role::kServer;
  conn.first_ns = 2000 * kMs;
  conn.end_ns = 2000 * kMs + 125'000'000'000;
  conn.has_handshake = true;
  conn.handshake_us = 850;
  set_path(conn, {TcpState::kSynRecv, TcpState::kEstablished, TcpState::kCloseWait,
                  TcpState::kLastAck, TcpState::kClose});
  conn.tx_bytes = std::uint64_t{5} << 30;
  conn.rx_bytes = 512;
  conn.close = CloseKind::kPassive;
  return conn;
}

Connection refused() {
  Connection conn = client();
  conn.conn_id = 44;
  conn.owner.pid = 999'999;
  set_comm(conn.owner, "evil\x1b[2J\\\xff");
  conn.rport = 9;
  conn.first_ns = 3000 * kMs;
  conn.end_ns = 3000 * kMs + 180;
  conn.has_handshake = false;
  set_path(conn, {TcpState::kSynSent, TcpState::kClose});
  conn.tx_bytes = 0;
  conn.rx_bytes = 0;
  conn.retransmits = 0;
  conn.close = CloseKind::kRefused;
  conn.error = ECONNREFUSED;
  conn.time_wait = false;
  return conn;
}

Connection preexisting() {
  Connection conn = client();
  conn.conn_id = 45;
  conn.owner = {};
  conn.role = Role::kUnknown;
  conn.preexisting = true;
  conn.has_handshake = false;
  set_path(conn,
           {TcpState::kEstablished, TcpState::kFinWait1, TcpState::kFinWait2, TcpState::kClose});
  conn.first_ns = 10 * kMs;
  conn.end_ns = 4000 * kMs;
  conn.tx_bytes = std::uint64_t{10} * 1024 * 1024;
  conn.rx_bytes = 999;
  return conn;
}

Connection long_path() {
  Connection conn = client();
  conn.conn_id = 46;
  set_comm(conn.owner, "0123456789abcdefghij");
  conn.first_ns = 0;
  conn.end_ns = std::uint64_t{2} * 3600 * 1000 * kMs + std::uint64_t{5} * 60 * 1000 * kMs;
  for (int i = 0; i < 12; ++i) {
    conn.path.push(TcpState::kEstablished);
  }
  return conn;
}

Leak close_wait_leak() {
  Leak leak;
  leak.kind = LeakKind::kCloseWait;
  leak.ts_ns = 40'000 * kMs;
  leak.age_ns = 31'000 * kMs;
  leak.threshold_ns = 30'000 * kMs;
  leak.owners = {{1234, "php-fpm", 7}, {1240, "php\nfpm", 9}};
  return leak;
}

// The full set of records every view is fed; each view shows its own part.
void feed(TextSink& sink) {
  sink.write(StartRecord{StartInfo{"0.1.0", "6.1.0", "", 0, {}}});
  const Connection c = client();
  sink.write(StateRecord{c, TcpState::kClose, TcpState::kSynSent, 0, false, 1000 * kMs});
  sink.write(
      StateRecord{c, TcpState::kSynSent, TcpState::kEstablished, 25'100'000, true, 1025 * kMs});
  sink.write(RetransmitRecord{c, TcpState::kEstablished, 1, 1100 * kMs});
  sink.write(RetransmitRecord{c, TcpState::kEstablished, 3, 1150 * kMs});
  RetransmitRecord folded{c, TcpState::kEstablished, 1, 1160 * kMs};
  folded.count = 4;
  folded.last_ts_ns = 1960 * kMs;
  sink.write(folded);
  sink.write(
      StateRecord{c, TcpState::kEstablished, TcpState::kFinWait1, 200 * kMs, true, 1225 * kMs});
  sink.write(InterimRecord{
      c, TcpState::kEstablished, 310, {2048, 150'000, 1}, {4096, 300'000, 4}, 1200 * kMs});
  sink.write(ConnectionRecord{c, 1250 * kMs});
  sink.write(ConnectionRecord{server(), server().end_ns});
  sink.write(ResetRecord{refused(), ResetDirection::kReceived, TcpState::kSynSent, 3000 * kMs});
  sink.write(ConnectionRecord{refused(), refused().end_ns});
  sink.write(ConnectionRecord{preexisting(), preexisting().end_ns});
  sink.write(ConnectionRecord{long_path(), long_path().end_ns});
  Connection leaking = server();
  leaking.state = TcpState::kCloseWait;
  sink.write(LeakRecord{leaking, close_wait_leak()});
  Leak resolved = close_wait_leak();
  resolved.ts_ns = 55'000 * kMs;
  resolved.age_ns = 45'200 * kMs;
  resolved.went_to = TcpState::kLastAck;
  Connection closing = leaking;
  closing.state = TcpState::kLastAck;
  sink.write(LeakResolvedRecord{closing, resolved});
  resolved.went_to = std::nullopt;
  sink.write(LeakResolvedRecord{leaking, resolved});
  Leak orphaned = close_wait_leak();
  orphaned.kind = LeakKind::kFinWait2;
  orphaned.owners.clear();
  orphaned.orphan = true;
  sink.write(LeakRecord{client(), orphaned});
  TimeWaitPressure pressure;
  pressure.ts_ns = 60'000 * kMs;
  pressure.laddr = ipv4(10, 0, 0, 1);
  pressure.raddr = ipv4(10, 0, 0, 2);
  pressure.rport = 80;
  pressure.netns_ino = 4026531840u;
  pressure.netns_name = "ci\x1b[2J";
  pressure.count = 25000;
  pressure.live = 12;
  pressure.taken = 25012;
  pressure.port_range = 28232;
  pressure.ratio = 25012.0 / 28232;
  pressure.growth_per_s = 400;
  pressure.exhausted_in_ns = 8'050 * kMs;
  sink.write(TimeWaitPressureRecord{pressure});
  StopInfo stop;
  stop.ts_ns = 70'000 * kMs;
  stop.events = 123'456;
  stop.run.lost = 12;
  stop.connections = 5;
  stop.live = 3;
  stop.overflow = 1;
  stop.per_process = {
      {1234,
       "curl",
       {3, 2, 0, 1, 1, {}, Percentiles{1'500, 250'000, 3'000'000}, Percentiles{40, 90, 120}}},
      {999999, "evil\x1b", {1, 0, 1, 0, 0, {}, {}, {}}},
      {0, "", {2, 0, 0, 0, 0, {}, {}, {}}}};
  stop.per_peer = {{ipv4(93, 184, 216, 34), 443, {3, 2, 1, 0, 1, {}, {}, {}}},
                   {ipv4(10, 0, 0, 9), std::nullopt, {1, 0, 0, 1, 0, {}, {}, {}}}};
  Connection hostile = client();
  set_comm(hostile.owner, "evil\x1b[2J");
  hostile.state = TcpState::kFinWait2;
  Leak stuck = close_wait_leak();
  stuck.kind = LeakKind::kFinWait2;
  stuck.owners.clear();
  stuck.orphan = true;
  Connection unowned = server();
  unowned.owner = {};
  unowned.state = TcpState::kSynRecv;
  Leak half_open = close_wait_leak();
  half_open.kind = LeakKind::kSynRecv;
  half_open.owners.clear();
  stop.open_leaks = {{leaking, close_wait_leak()}, {hostile, stuck}, {unowned, half_open}};
  stop.open_leak_count = 4;
  sink.write(StopRecord{stop});
}

std::string render(TextOptions options) {
  std::ostringstream out;
  {
    TextSink sink(out, kClock, options);
    feed(sink);
    sink.flush();
  }
  return out.str();
}

// TCPTRAIL_UPDATE_GOLDEN=1 rewrites the file instead of comparing; review the diff.
void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(TCPTRAIL_TEST_DATA) + "/" + name;
  if (std::getenv("TCPTRAIL_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing " << path << " (run with TCPTRAIL_UPDATE_GOLDEN=1)";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str());
}

TEST(TextSink, ConnectionViewMatchesGolden) {
  expect_golden("text_connection.golden", render(kUtc));
}

TEST(TextSink, RetransmitsViewMatchesGolden) {
  expect_golden("text_retransmits.golden", render({.retransmits_view = true, .utc = true}));
}

TEST(TextSink, TransitionsAddOneLinePerStateChange) {
  const std::string plain = render(kUtc);
  const std::string text = render({.transitions = true, .utc = true});
  EXPECT_EQ(lines_of(text).size(), lines_of(plain).size() + 3);
  EXPECT_NE(text.find("02:07:50.025 1234    curl             client 10.0.0.1:45678        "
                      "93.184.216.34:443     SYN_SENT -> ESTABLISHED after 25.1ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("CLOSE -> SYN_SENT\n"), std::string::npos);
}

TEST(TextSink, ColumnsLineUpForIpv4Rows) {
  const auto lines = lines_of(render(kUtc));
  ASSERT_FALSE(lines.empty());
  const std::size_t remote = lines[0].find("REMOTE");
  const std::size_t close = lines[0].find("CLOSE");
  for (const std::string& line : lines) {
    if (line.starts_with("LEAKS OPEN AT EXIT")) {
      break;  // a table of its own, with its own columns
    }
    const std::size_t address = line.find("93.184.216.34:");
    if (address != std::string::npos && address != 0 && line.find("LEAK") == std::string::npos) {
      EXPECT_EQ(line.find("93.184.216.34:"), remote) << line;
      EXPECT_EQ(line.find_first_of("arpt", close), close) << line;
    }
  }
}

TEST(TextSink, NonPrintableCommBytesAreEscaped) {
  const std::string text = render(kUtc);
  // Cut at a whole escape: the \xff that would pass 16 columns is dropped.
  EXPECT_NE(text.find(" evil\\x1b[2J\\\\    client "), std::string::npos) << text;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(c == '\n' || (byte >= 0x20 && byte < 0x7f)) << static_cast<int>(byte);
  }
}

TEST(TextSink, LongCommIsCutToSixteenColumns) {
  const std::string text = render(kUtc);
  EXPECT_NE(text.find(" 0123456789abcdef client "), std::string::npos) << text;
  EXPECT_EQ(text.find("0123456789abcdefg"), std::string::npos);
}

TEST(TextSink, LostEventsStandOut) {
  const std::string text = render(kUtc);
  EXPECT_NE(text.find("WARNING: 12 events LOST"), std::string::npos);
  StopInfo clean;
  clean.events = 10;
  std::ostringstream out;
  {
    TextSink sink(out, kClock, kUtc);
    sink.write(StopRecord{clean});
  }
  EXPECT_EQ(out.str().find("WARNING"), std::string::npos);
  EXPECT_EQ(out.str().find("PROCESS"), std::string::npos);
  EXPECT_NE(out.str().find("10 events, 0 lost"), std::string::npos);
}

TEST(TextSink, BuffersUntilFlush) {
  std::ostringstream out;
  TextSink sink(out, kClock, kUtc);
  sink.write(ConnectionRecord{client(), 1250 * kMs});
  EXPECT_TRUE(out.str().empty());
  sink.flush();
  EXPECT_EQ(lines_of(out.str()).size(), 1u);
}

TEST(TextFormat, HumanDurations) {
  EXPECT_EQ(human_duration(0), "0us");
  EXPECT_EQ(human_duration(850'000), "850us");
  EXPECT_EQ(human_duration(999'499), "999us");
  EXPECT_EQ(human_duration(999'500), "1.00ms");
  EXPECT_EQ(human_duration(1'234'000), "1.23ms");
  EXPECT_EQ(human_duration(9'999'000), "10.0ms");
  EXPECT_EQ(human_duration(12'340'000), "12.3ms");
  EXPECT_EQ(human_duration(123 * kMs), "123ms");
  EXPECT_EQ(human_duration(999'600'000), "1.00s");
  EXPECT_EQ(human_duration(3'400 * kMs), "3.40s");
  EXPECT_EQ(human_duration(34'500 * kMs), "34.5s");
  EXPECT_EQ(human_duration(59'960 * kMs), "1m00s");
  EXPECT_EQ(human_duration(125'000 * kMs), "2m05s");
  EXPECT_EQ(human_duration(3'599'400 * kMs), "59m59s");
  EXPECT_EQ(human_duration(3'720'000 * kMs), "1h02m");
  EXPECT_EQ(human_duration(std::numeric_limits<std::uint64_t>::max()), "5124095h35m");
}

TEST(TextFormat, HumanBytes) {
  EXPECT_EQ(human_bytes(0), "0B");
  EXPECT_EQ(human_bytes(1023), "1023B");
  EXPECT_EQ(human_bytes(1024), "1.0K");
  EXPECT_EQ(human_bytes(1536), "1.5K");
  EXPECT_EQ(human_bytes(10 * 1024 - 52), "9.9K");
  EXPECT_EQ(human_bytes(10 * 1024 - 51), "10K");
  EXPECT_EQ(human_bytes(std::uint64_t{150} * 1024), "150K");
  EXPECT_EQ(human_bytes(std::uint64_t{1023} * 1024), "1023K");
  EXPECT_EQ(human_bytes(1024 * 1024 - 1), "1.0M");
  EXPECT_EQ(human_bytes(3'355'443), "3.2M");
  EXPECT_EQ(human_bytes(std::uint64_t{5} << 30), "5.0G");
  EXPECT_EQ(human_bytes(std::numeric_limits<std::uint64_t>::max()), "16384P");
}

}  // namespace
}  // namespace tcptrail
