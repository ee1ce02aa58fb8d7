#include "record_fixtures.hpp"
#include "sinks/json_sink.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

using nlohmann::json;
using nlohmann::ordered_json;

Connection client() {
  Connection conn;
  conn.conn_id = 42;
  conn.sock_cookie = 0xffff'ffff'0000'0007;  // above 2^53: a number would lose it
  conn.owner.pid = 1234;
  set_comm(conn.owner, "curl");
  conn.owner.source = OwnerSource::kSyscall;
  conn.laddr = ipv4(10, 0, 0, 1);
  conn.raddr = ipv4(93, 184, 216, 34);
  conn.lport = 45678;
  conn.rport = 443;
  conn.netns_ino = 4026531840u;
  conn.role = Role::kClient;
  conn.state = TcpState::kClose;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 1250 * kMs;
  conn.has_handshake = true;
  conn.handshake_us = 25'100;
  for (const TcpState state : {TcpState::kSynSent, TcpState::kEstablished, TcpState::kFinWait1,
                               TcpState::kFinWait2, TcpState::kClose}) {
    conn.path.push(state);
  }
  conn.state_ns[*timed_state_index(TcpState::kSynSent)] = 25'100'000;
  conn.state_ns[*timed_state_index(TcpState::kEstablished)] = 200 * kMs;
  conn.state_ns[*timed_state_index(TcpState::kFinWait2)] = 24'900'000;
  conn.tx_bytes = 1234;
  conn.rx_bytes = 3'400'000;
  conn.retransmits = 2;
  conn.srtt_us = 12'000;
  conn.close = CloseKind::kActive;
  conn.time_wait = true;
  return conn;
}

// Every line must parse on its own; the stream ends with a newline.
std::vector<ordered_json> parse_lines(const std::string& text) {
  std::vector<ordered_json> lines;
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    for (const char c : line) {
      EXPECT_GE(static_cast<unsigned char>(c), 0x20) << line;
    }
    try {
      lines.push_back(ordered_json::parse(line));
    } catch (const json::exception& e) {
      ADD_FAILURE() << e.what() << ": " << line;
    }
  }
  return lines;
}

std::vector<ordered_json> run(const std::function<void(JsonSink&)>& records) {
  std::ostringstream out;
  JsonSink sink(out, kClock, "web-1");
  records(sink);
  sink.flush();
  return parse_lines(out.str());
}

ordered_json one(const std::function<void(JsonSink&)>& records) {
  auto lines = run(records);
  EXPECT_EQ(lines.size(), 1u);
  return lines.empty() ? ordered_json() : lines.front();
}

std::vector<std::string> keys(const ordered_json& object) {
  std::vector<std::string> names;
  for (const auto& item : object.items()) {
    names.push_back(item.key());
  }
  return names;
}

const std::vector<std::string> kCommon = {
    "ts",          "conn_id",      "cookie",  "pid",   "comm",        "owner_source", "family",
    "laddr",       "lport",        "raddr",   "rport", "role",        "netns",        "cgroup",
    "cgroup_path", "container_id", "pod_uid", "unit",  "community_id"};

std::vector<std::string> with_common(std::vector<std::string> head,
                                     const std::vector<std::string>& tail) {
  head.insert(head.end(), kCommon.begin(), kCommon.end());
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

const std::regex kRfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)");

TEST(JsonSink, StartRecord) {
  const auto line = one([](JsonSink& sink) {
    sink.write(StartRecord{StartInfo{"0.1.0",
                                     "6.1.0-13-amd64",
                                     "-T --json",
                                     5 * kMs,
                                     {"netns", "owners"},
                                     "4f0c7c1e-3f5a-4c5e-9d1b-2a6b8c0d1e2f"}});
  });
  EXPECT_EQ(keys(line), (std::vector<std::string>{"type", "host", "ts", "version", "kernel",
                                                  "boot_id", "options", "degraded"}));
  EXPECT_EQ(line["degraded"], (std::vector<std::string>{"netns", "owners"}));
  EXPECT_EQ(line["type"], "start");
  EXPECT_EQ(line["ts"], "2026-11-22T02:07:49.005000000Z");
  EXPECT_EQ(line["version"], "0.1.0");
  EXPECT_EQ(line["kernel"], "6.1.0-13-amd64");
  EXPECT_EQ(line["options"], "-T --json");
  EXPECT_EQ(line["host"], "web-1");
  EXPECT_EQ(line["boot_id"], "4f0c7c1e-3f5a-4c5e-9d1b-2a6b8c0d1e2f");
}

TEST(JsonSink, ConnectionRecordFieldsOrderAndTypes) {
  const auto line = one([](JsonSink& sink) { sink.write(ConnectionRecord{client(), 1250 * kMs}); });
  EXPECT_EQ(keys(line), with_common({"type", "host"},
                                    {"start", "preexisting", "duration_ms", "handshake_ms",
                                     "states", "path", "tx_bytes", "rx_bytes", "retransmits",
                                     "syn_retransmits", "synack_retransmits", "srtt_us", "close",
                                     "error", "time_wait", "orphan", "ppid", "exe"}));
  EXPECT_EQ(line["type"], "connection");
  ASSERT_TRUE(line["ts"].is_string());
  EXPECT_TRUE(std::regex_match(line["ts"].get<std::string>(), kRfc3339));
  EXPECT_EQ(line["ts"], "2026-11-22T02:07:50.250000000Z");
  EXPECT_EQ(line["conn_id"], "42");
  EXPECT_EQ(line["cookie"], "18446744069414584327");
  EXPECT_EQ(line["pid"], 1234);
  EXPECT_EQ(line["comm"], "curl");
  EXPECT_EQ(line["owner_source"], "syscall");
  EXPECT_EQ(line["family"], "ipv4");
  EXPECT_EQ(line["laddr"], "10.0.0.1");
  EXPECT_EQ(line["lport"], 45678);
  EXPECT_EQ(line["raddr"], "93.184.216.34");
  EXPECT_EQ(line["rport"], 443);
  EXPECT_EQ(line["role"], "client");
  EXPECT_EQ(line["netns"], 4026531840u);
  EXPECT_EQ(line["start"], "2026-11-22T02:07:50.000000000Z");
  EXPECT_EQ(line["preexisting"], false);
  ASSERT_TRUE(line["duration_ms"].is_number());
  EXPECT_DOUBLE_EQ(line["duration_ms"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(line["handshake_ms"].get<double>(), 25.1);
  // FIN_WAIT1 was visited for no measurable time: present with 0; never-visited states absent.
  EXPECT_EQ(keys(line["states"]),
            (std::vector<std::string>{"SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2"}));
  EXPECT_DOUBLE_EQ(line["states"]["ESTABLISHED"].get<double>(), 200.0);
  EXPECT_DOUBLE_EQ(line["states"]["FIN_WAIT1"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(line["states"]["FIN_WAIT2"].get<double>(), 24.9);
  EXPECT_EQ(line["path"],
            ordered_json::parse(R"(["SYN_SENT","ESTABLISHED","FIN_WAIT1","FIN_WAIT2","CLOSE"])"));
  EXPECT_FALSE(line.contains("path_truncated"));
  EXPECT_EQ(line["tx_bytes"], 1234);
  EXPECT_EQ(line["rx_bytes"], 3400000);
  EXPECT_EQ(line["retransmits"], 2);
  EXPECT_EQ(line["syn_retransmits"], 0);
  EXPECT_EQ(line["synack_retransmits"], 0);
  EXPECT_EQ(line["srtt_us"], 12000);
  EXPECT_EQ(line["close"], "active");
  EXPECT_TRUE(line["error"].is_null());
  EXPECT_EQ(line["time_wait"], true);
  EXPECT_EQ(line["orphan"], false);
  // Before (or without) an identity, its fields say "not known".
  for (const char* name : {"cgroup_path", "container_id", "pod_uid", "unit", "ppid", "exe"}) {
    EXPECT_TRUE(line[name].is_null()) << name;
  }
  // As Python's hashlib computes it for this tuple (the spec's algorithm, independently).
  EXPECT_EQ(line["community_id"], "1:OCmRk8Oa6oZZSOzMro6vxycDSt4=");
}

TEST(JsonSink, IdentityFields) {
  CgroupIdentity cgroup;
  cgroup.path = "/kubepods.slice/kubepods-podu.slice/cri-containerd-c.scope";
  cgroup.container_id = "c";
  cgroup.pod_uid = "u";
  cgroup.unit = "cri-containerd-c.scope";
  CgroupIdentity service;
  service.path = "/system.slice/nginx.service";
  service.unit = "nginx.service";
  const ProcessIdentity process{1, "/usr/sbin/php-fpm8.2 (deleted)\x1b[2J"};
  const auto lines = run([&](JsonSink& sink) {
    sink.write(ConnectionRecord{client(), 1250 * kMs, Identity{&cgroup, &process}});
    sink.write(ResetRecord{client(), ResetDirection::kSent, TcpState::kClose, 1250 * kMs,
                           Identity{&service, nullptr}});
  });
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0]["cgroup_path"], cgroup.path);
  EXPECT_EQ(lines[0]["container_id"], "c");
  EXPECT_EQ(lines[0]["pod_uid"], "u");
  EXPECT_EQ(lines[0]["unit"], "cri-containerd-c.scope");
  EXPECT_EQ(lines[0]["ppid"], 1);
  EXPECT_EQ(lines[0]["exe"], "/usr/sbin/php-fpm8.2 (deleted)\x1b[2J");
  EXPECT_EQ(lines[1]["cgroup_path"], "/system.slice/nginx.service");
  EXPECT_TRUE(lines[1]["container_id"].is_null());  // resolved: in no container
  EXPECT_TRUE(lines[1]["pod_uid"].is_null());
  EXPECT_EQ(lines[1]["unit"], "nginx.service");
  EXPECT_EQ(lines[0]["community_id"], lines[1]["community_id"]);
}

// A host name is set by root, yet it is escaped like every other string.
TEST(JsonSink, HostIsEscaped) {
  std::ostringstream out;
  JsonSink sink(out, kClock, "evil\x1b]0;x\x07\n");
  sink.write(StopRecord{StopInfo{}});
  sink.flush();
  const auto lines = parse_lines(out.str());
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["host"], "evil\x1b]0;x\x07\n");
}

TEST(JsonSink, PreexistingConnectionHasNullStartAndDuration) {
  Connection conn = client();
  conn.preexisting = true;
  conn.has_handshake = false;
  conn.path = {};
  conn.state_ns = {};
  // Found in ESTABLISHED: its time there is unknown, so it is not reported.
  conn.path.push(TcpState::kEstablished);
  conn.path.push(TcpState::kCloseWait);
  conn.path.push(TcpState::kLastAck);
  conn.path.push(TcpState::kClose);
  conn.state_ns[*timed_state_index(TcpState::kCloseWait)] = 3 * kMs;
  const auto line = one([&](JsonSink& sink) { sink.write(ConnectionRecord{conn, 1250 * kMs}); });
  EXPECT_TRUE(line["start"].is_null());
  EXPECT_EQ(line["preexisting"], true);
  EXPECT_TRUE(line["duration_ms"].is_null());
  EXPECT_TRUE(line["handshake_ms"].is_null());
  EXPECT_EQ(keys(line["states"]), (std::vector<std::string>{"CLOSE_WAIT", "LAST_ACK"}));
  EXPECT_EQ(line["path"].size(), 4u);
}

TEST(JsonSink, TruncatedPathIsFlagged) {
  Connection conn = client();
  for (std::size_t i = 0; i < StatePath::kMaxPath + 2; ++i) {
    conn.path.push(TcpState::kEstablished);
  }
  const auto line = one([&](JsonSink& sink) { sink.write(ConnectionRecord{conn, 1250 * kMs}); });
  EXPECT_EQ(line["path"].size(), StatePath::kMaxPath);
  EXPECT_EQ(line["path_truncated"], true);
}

TEST(JsonSink, ErrorIsNamedOrNumbered) {
  Connection refused = client();
  refused.error = ECONNREFUSED;
  refused.close = CloseKind::kRefused;
  Connection odd = client();
  odd.error = 4095;
  const auto lines = run([&](JsonSink& sink) {
    sink.write(ConnectionRecord{refused, 1250 * kMs});
    sink.write(ConnectionRecord{odd, 1250 * kMs});
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["error"], "ECONNREFUSED");
  EXPECT_EQ(lines[0]["close"], "refused");
  EXPECT_EQ(lines[1]["error"], "E4095");
}

TEST(JsonSink, LiveConnectionDurationRunsToRecordTime) {
  Connection conn = client();
  conn.end_ns = 0;
  const auto line = one([&](JsonSink& sink) { sink.write(ConnectionRecord{conn, 1100 * kMs}); });
  EXPECT_DOUBLE_EQ(line["duration_ms"].get<double>(), 100.0);
}

TEST(JsonSink, ConnIdAbove2To53RoundTripsAsString) {
  Connection conn = client();
  conn.conn_id = (std::uint64_t{1} << 53) + 3;
  const auto lines = run([&](JsonSink& sink) {
    sink.write(ConnectionRecord{conn, 1250 * kMs});
    sink.write(RetransmitRecord{conn, TcpState::kEstablished, 1, 1100 * kMs});
  });
  for (const auto& line : lines) {
    ASSERT_TRUE(line["conn_id"].is_string());
    EXPECT_EQ(std::stoull(line["conn_id"].get<std::string>()), conn.conn_id);
  }
}

TEST(JsonSink, HostileCommsGiveValidJson) {
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    std::string comm;
    std::string parsed;
  };
  const std::vector<Case> cases = {
      {"a\"b\\c", "a\"b\\c"},
      {"line\nbreak", "line\nbreak"},
      {"\x1b[31mred", "\x1b[31mred"},
      {"del\x7f", "del\x7f"},
      {"\x01\x02\x03", "\x01\x02\x03"},
      {"tab\there", "tab\there"},
      {"\xc2\x9b\x32J", "\xc2\x9b\x32J"},  // CSI 2J: clear the screen
      {"\xff\xfe", fffd + fffd},
      {"\xe2\x82", fffd},
      {"\xc0\xaf", fffd + fffd},
      {"\xed\xa0\x80", fffd + fffd + fffd},
      {"\xf0\x9f\x98\x80ok", "\xf0\x9f\x98\x80ok"},
      // The kernel cuts comm at 16 bytes, possibly inside a character.
      {"0123456789abcd\xe2\x82\xac", "0123456789abcd" + fffd},
  };
  for (const Case& c : cases) {
    Connection conn = client();
    set_comm(conn.owner, c.comm);
    Leak leak;
    const std::string comm(conn.owner.comm_view());
    leak.owners.push_back({77, comm + "\xff\"\n", 3});
    StopInfo stop;
    stop.per_process.push_back({77, comm, {1, 0, 0, 1, 0, {}, {}, {}}});
    std::ostringstream out;
    {
      JsonSink sink(out, kClock, "web-1");
      sink.write(ConnectionRecord{conn, 1250 * kMs});
      sink.write(
          StateRecord{conn, TcpState::kSynSent, TcpState::kEstablished, 1, true, 1100 * kMs});
      sink.write(RetransmitRecord{conn, TcpState::kEstablished, 1, 1100 * kMs});
      sink.write(ResetRecord{conn, ResetDirection::kSent, TcpState::kEstablished, 1100 * kMs});
      sink.write(LeakRecord{conn, leak});
      sink.write(LeakResolvedRecord{conn, leak});
      sink.write(StopRecord{stop});
    }
    const std::string text = out.str();
    const auto lines = parse_lines(text);
    ASSERT_EQ(lines.size(), 7u) << testing::PrintToString(c.comm);
    // No byte that a terminal would act on survives unescaped.
    EXPECT_EQ(text.find('\x1b'), std::string::npos);
    EXPECT_EQ(text.find('\x7f'), std::string::npos);
    EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(lines[i]["comm"], c.parsed) << testing::PrintToString(c.comm);
    }
    EXPECT_EQ(lines[4]["comm"], c.parsed + fffd + "\"\n");
    EXPECT_EQ(lines[4]["owners"][0]["comm"], c.parsed + fffd + "\"\n");
    EXPECT_EQ(lines[6]["per_process"][0]["comm"], c.parsed);
  }
}

TEST(JsonSink, CommOfSixteenBytesIsNotTerminated) {
  Connection conn = client();
  set_comm(conn.owner, "0123456789abcdefXYZ");
  const auto line = one([&](JsonSink& sink) { sink.write(ConnectionRecord{conn, 1250 * kMs}); });
  EXPECT_EQ(line["comm"], "0123456789abcdef");
}

TEST(JsonSink, Ipv6Addresses) {
  Connection conn = client();
  conn.laddr = ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  conn.raddr = ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2});
  const auto line = one([&](JsonSink& sink) { sink.write(ConnectionRecord{conn, 1250 * kMs}); });
  EXPECT_EQ(line["family"], "ipv6");
  EXPECT_EQ(line["laddr"], "2001:db8::1");
  EXPECT_EQ(line["raddr"], "::ffff:10.0.0.2");
}

TEST(JsonSink, StateRecord) {
  const auto lines = run([](JsonSink& sink) {
    sink.write(StateRecord{client(), TcpState::kSynSent, TcpState::kEstablished, 25'100'000, true,
                           1025 * kMs});
    sink.write(
        StateRecord{client(), TcpState::kEstablished, TcpState::kFinWait1, 0, false, 1200 * kMs});
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(keys(lines[0]), with_common({"type", "host"}, {"old", "new", "ms_in_old"}));
  EXPECT_EQ(lines[0]["type"], "state");
  EXPECT_EQ(lines[0]["old"], "SYN_SENT");
  EXPECT_EQ(lines[0]["new"], "ESTABLISHED");
  EXPECT_DOUBLE_EQ(lines[0]["ms_in_old"].get<double>(), 25.1);
  EXPECT_TRUE(lines[1]["ms_in_old"].is_null());
}

TEST(JsonSink, RetransmitAndResetRecords) {
  const auto lines = run([](JsonSink& sink) {
    sink.write(RetransmitRecord{client(), TcpState::kEstablished, 3, 1100 * kMs});
    sink.write(ResetRecord{client(), ResetDirection::kReceived, TcpState::kSynSent, 1100 * kMs});
    sink.write(ResetRecord{client(), ResetDirection::kSent, TcpState::kEstablished, 1100 * kMs});
    RetransmitRecord folded{client(), TcpState::kEstablished, 1, 1100 * kMs};
    folded.count = 5;
    folded.last_ts_ns = 1900 * kMs;
    sink.write(folded);
  });
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(keys(lines[0]), with_common({"type", "host"}, {"state", "segs", "count", "last_ts"}));
  EXPECT_EQ(lines[0]["type"], "retransmit");
  EXPECT_EQ(lines[0]["state"], "ESTABLISHED");
  EXPECT_EQ(lines[0]["segs"], 3);
  EXPECT_EQ(lines[0]["count"], 1);
  EXPECT_EQ(lines[0]["last_ts"], lines[0]["ts"]) << "one retransmit: its own time";
  EXPECT_EQ(lines[3]["count"], 5);
  EXPECT_EQ(lines[3]["ts"], "2026-11-22T02:07:50.100000000Z") << "the first's time";
  EXPECT_EQ(lines[3]["last_ts"], "2026-11-22T02:07:50.900000000Z");
  EXPECT_EQ(keys(lines[1]), with_common({"type", "host"}, {"direction", "state"}));
  EXPECT_EQ(lines[1]["type"], "reset");
  EXPECT_EQ(lines[1]["direction"], "received");
  EXPECT_EQ(lines[1]["state"], "SYN_SENT");
  EXPECT_EQ(lines[2]["direction"], "sent");
}

TEST(JsonSink, LeakRecordBlamesFirstDescriptorHolder) {
  Connection conn = client();
  conn.state = TcpState::kCloseWait;
  Leak leak;
  leak.kind = LeakKind::kCloseWait;
  leak.ts_ns = 40'000 * kMs;
  leak.age_ns = 31'000 * kMs;
  leak.threshold_ns = 30'000 * kMs;
  leak.owners = {{4321, "php-fpm", 7}, {4322, "php-fpm", 9}};
  const auto lines = run([&](JsonSink& sink) {
    sink.write(LeakRecord{conn, leak});
    sink.write(LeakResolvedRecord{conn, leak});  // went_to unset: gone
    Leak orphaned = leak;
    orphaned.owners.clear();
    orphaned.orphan = true;
    sink.write(LeakRecord{conn, orphaned});
    Leak to_last_ack = leak;
    to_last_ack.went_to = TcpState::kLastAck;
    Connection closing = conn;
    closing.state = TcpState::kLastAck;
    sink.write(LeakResolvedRecord{closing, to_last_ack});
  });
  ASSERT_EQ(lines.size(), 4u);
  const auto& line = lines[0];
  std::vector<std::string> expected = {"type", "host", "kind"};
  expected.insert(expected.end(), kCommon.begin(), kCommon.end());
  for (const char* name : {"state", "age_ms", "threshold_ms", "orphan", "preexisting", "owners"}) {
    expected.emplace_back(name);
  }
  EXPECT_EQ(keys(line), expected);
  EXPECT_EQ(line["type"], "leak");
  EXPECT_EQ(line["kind"], "close_wait");
  EXPECT_EQ(line["ts"], "2026-11-22T02:08:29.000000000Z");
  EXPECT_EQ(line["pid"], 4321);
  EXPECT_EQ(line["comm"], "php-fpm");
  EXPECT_EQ(line["owner_source"], "fd_scan");
  EXPECT_EQ(line["state"], "CLOSE_WAIT");
  EXPECT_DOUBLE_EQ(line["age_ms"].get<double>(), 31000.0);
  EXPECT_DOUBLE_EQ(line["threshold_ms"].get<double>(), 30000.0);
  EXPECT_EQ(line["orphan"], false);
  ASSERT_EQ(line["owners"].size(), 2u);
  EXPECT_EQ(keys(line["owners"][1]), (std::vector<std::string>{"pid", "comm", "fd"}));
  EXPECT_EQ(line["owners"][1]["pid"], 4322);
  EXPECT_EQ(line["owners"][1]["fd"], 9);

  expected.emplace_back("leaked_ms");
  expected.emplace_back("went_to");
  EXPECT_EQ(keys(lines[1]), expected);
  EXPECT_EQ(lines[1]["type"], "leak_resolved");
  EXPECT_DOUBLE_EQ(lines[1]["leaked_ms"].get<double>(), 31000.0);
  EXPECT_EQ(lines[1]["went_to"], "gone");
  EXPECT_EQ(lines[1]["state"], "CLOSE_WAIT") << "the last state seen";
  EXPECT_EQ(lines[3]["went_to"], "LAST_ACK");
  EXPECT_EQ(lines[3]["state"], "LAST_ACK");

  EXPECT_EQ(lines[2]["pid"], 1234);
  EXPECT_EQ(lines[2]["comm"], "curl");
  EXPECT_EQ(lines[2]["owner_source"], "syscall");
  EXPECT_EQ(lines[2]["orphan"], true);
  EXPECT_TRUE(lines[2]["owners"].is_array());
  EXPECT_TRUE(lines[2]["owners"].empty());
}

TEST(JsonSink, TimeWaitPressureRecord) {
  TimeWaitPressure pressure;
  pressure.ts_ns = 2000 * kMs;
  pressure.laddr = ipv4(10, 0, 0, 1);
  pressure.raddr = ipv4(10, 0, 0, 2);
  pressure.rport = 80;
  pressure.netns_ino = 4026531840u;
  pressure.netns_name = "client";
  pressure.count = 25000;
  pressure.live = 12;
  pressure.taken = 25012;
  pressure.port_range = 28232;
  pressure.ratio = 25012.0 / 28232;
  pressure.growth_per_s = 400;
  pressure.exhausted_in_ns = 8'050 * kMs;
  pressure.tw_reuse = 2;
  const auto line = one([&](JsonSink& sink) { sink.write(TimeWaitPressureRecord{pressure}); });
  EXPECT_EQ(keys(line), (std::vector<std::string>{"type", "host", "kind", "ts", "laddr", "raddr",
                                                  "rport", "netns", "netns_name", "count", "live",
                                                  "taken", "port_range", "ratio", "growth_per_s",
                                                  "exhausted_in_ms", "tw_reuse", "reusable"}));
  EXPECT_EQ(line["netns_name"], "client");
  EXPECT_EQ(line["live"], 12);
  EXPECT_EQ(line["taken"], 25012);
  EXPECT_DOUBLE_EQ(line["growth_per_s"].get<double>(), 400);
  EXPECT_DOUBLE_EQ(line["exhausted_in_ms"].get<double>(), 8050);
  EXPECT_EQ(line["tw_reuse"], 2);
  EXPECT_EQ(line["reusable"], false);
  EXPECT_EQ(line["type"], "leak");
  EXPECT_EQ(line["kind"], "time_wait");
  EXPECT_EQ(line["laddr"], "10.0.0.1");
  EXPECT_EQ(line["raddr"], "10.0.0.2");
  EXPECT_EQ(line["rport"], 80);
  EXPECT_EQ(line["count"], 25000);
  EXPECT_EQ(line["port_range"], 28232);
  EXPECT_DOUBLE_EQ(line["ratio"].get<double>(), 25012.0 / 28232);

  pressure.netns_name.clear();
  pressure.exhausted_in_ns.reset();
  const auto unnamed = one([&](JsonSink& sink) { sink.write(TimeWaitPressureRecord{pressure}); });
  EXPECT_TRUE(unnamed["netns_name"].is_null());
  EXPECT_TRUE(unnamed["exhausted_in_ms"].is_null());
}

TEST(JsonSink, StopRecord) {
  StopInfo info;
  info.ts_ns = 3000 * kMs;
  info.events = 100;
  info.run.lost = 2;
  info.run.lost_connections = 1;
  info.rejected = 1;
  info.connections = 10;
  info.live = 4;
  info.overflow = 5;
  info.run.sweeps = 7;
  info.run.longest_sweep_interval_ns = 1'000'250'000;
  info.run.longest_sweep_ns = 12'345'678;
  info.run.scan_errors = 3;
  info.run.longest_ring_pause_ns = 456'000;
  SummaryCounts counts{10, 2, 1, 0, 3, {}, {}, {}};
  counts.lifetime = Percentiles{1'500, 250'000, 3'000'000};
  counts.closes[static_cast<std::size_t>(CloseKind::kActive)] = 7;
  counts.closes[static_cast<std::size_t>(CloseKind::kNoPort)] = 3;
  info.per_process = {{1234, "curl", counts}, {0, "", {1, 0, 0, 0, 0, {}, {}, {}}}};
  info.per_peer = {{ipv4(10, 0, 0, 2), 6379, counts}, {ipv4(10, 0, 0, 3), std::nullopt, {}}};
  Connection held = client();
  held.conn_id = 77;
  held.sock_cookie = 123456789012345uLL;
  held.state = TcpState::kCloseWait;
  Leak held_leak;
  held_leak.kind = LeakKind::kCloseWait;
  held_leak.age_ns = 90'000 * kMs;
  held_leak.owners = {{4321, "php-fpm", 7}};
  Connection orphaned = client();
  orphaned.state = TcpState::kFinWait2;
  Leak orphaned_leak;
  orphaned_leak.kind = LeakKind::kFinWait2;
  orphaned_leak.age_ns = 61'000 * kMs;
  orphaned_leak.orphan = true;
  info.open_leaks = {{held, held_leak}, {orphaned, orphaned_leak}};
  info.open_leak_count = 3;
  const auto line = one([&](JsonSink& sink) { sink.write(StopRecord{info}); });
  EXPECT_EQ(keys(line), (std::vector<std::string>{"type",
                                                  "host",
                                                  "ts",
                                                  "events",
                                                  "lost",
                                                  "lost_connections",
                                                  "rejected",
                                                  "connections",
                                                  "live",
                                                  "overflow",
                                                  "sweeps",
                                                  "longest_sweep_interval_ms",
                                                  "longest_sweep_ms",
                                                  "scan_errors",
                                                  "longest_ring_pause_ms",
                                                  "identity_late",
                                                  "per_process",
                                                  "per_peer",
                                                  "open_leak_count",
                                                  "open_leaks"}));
  EXPECT_EQ(line["open_leak_count"], 3) << "more than are listed";
  ASSERT_EQ(line["open_leaks"].size(), 2u);
  const auto& first = line["open_leaks"][0];
  EXPECT_EQ(keys(first),
            (std::vector<std::string>{"kind", "conn_id", "cookie", "pid", "comm", "owner_source",
                                      "family", "laddr", "lport", "raddr", "rport", "role", "netns",
                                      "state", "age_ms", "orphan"}));
  EXPECT_EQ(first["kind"], "close_wait");
  EXPECT_EQ(first["conn_id"], "77");
  EXPECT_EQ(first["cookie"], "123456789012345");
  EXPECT_EQ(first["pid"], 4321) << "the holder of the descriptor, as in its leak record";
  EXPECT_EQ(first["comm"], "php-fpm");
  EXPECT_EQ(first["owner_source"], "fd_scan");
  EXPECT_EQ(first["state"], "CLOSE_WAIT");
  EXPECT_DOUBLE_EQ(first["age_ms"].get<double>(), 90000.0);
  EXPECT_EQ(first["orphan"], false);
  const auto& second = line["open_leaks"][1];
  EXPECT_EQ(second["pid"], 1234) << "no holder: the traced owner";
  EXPECT_EQ(second["comm"], "curl");
  EXPECT_EQ(second["state"], "FIN_WAIT2");
  EXPECT_EQ(second["orphan"], true);
  EXPECT_EQ(line["type"], "stop");
  EXPECT_EQ(line["events"], 100);
  EXPECT_EQ(line["lost"], 2);
  EXPECT_EQ(line["lost_connections"], 1);
  EXPECT_EQ(line["overflow"], 5);
  EXPECT_EQ(line["sweeps"], 7);
  EXPECT_DOUBLE_EQ(line["longest_sweep_interval_ms"].get<double>(), 1000.25);
  EXPECT_DOUBLE_EQ(line["longest_sweep_ms"].get<double>(), 12.346);
  EXPECT_EQ(line["scan_errors"], 3);
  EXPECT_DOUBLE_EQ(line["longest_ring_pause_ms"].get<double>(), 0.456);
  ASSERT_EQ(line["per_process"].size(), 2u);
  EXPECT_EQ(
      keys(line["per_process"][0]),
      (std::vector<std::string>{"pid", "comm", "connections", "retransmits", "resets", "leaks",
                                "failed_connects", "closes", "lifetime_ms", "handshake_ms"}));
  EXPECT_EQ(line["per_process"][0]["pid"], 1234);
  EXPECT_EQ(line["per_process"][0]["comm"], "curl");
  EXPECT_EQ(line["per_process"][0]["retransmits"], 2);
  EXPECT_EQ(line["per_process"][0]["failed_connects"], 3);
  EXPECT_EQ(line["per_process"][0]["closes"],
            ordered_json::parse(R"({"active": 7, "no_port": 3})"));
  EXPECT_EQ(line["per_process"][0]["lifetime_ms"],
            ordered_json::parse(R"({"p50": 1.5, "p90": 250.0, "p99": 3000.0})"));
  EXPECT_TRUE(line["per_process"][0]["handshake_ms"].is_null()) << "no handshake timed";
  EXPECT_TRUE(line["per_process"][1]["pid"].is_null()) << "no owner";
  EXPECT_TRUE(line["per_process"][1]["comm"].is_null());
  ASSERT_EQ(line["per_peer"].size(), 2u);
  EXPECT_EQ(
      keys(line["per_peer"][0]),
      (std::vector<std::string>{"addr", "port", "connections", "retransmits", "resets", "leaks",
                                "failed_connects", "closes", "lifetime_ms", "handshake_ms"}));
  EXPECT_EQ(line["per_peer"][0]["addr"], "10.0.0.2");
  EXPECT_EQ(line["per_peer"][0]["port"], 6379);
  EXPECT_EQ(line["per_peer"][0]["closes"]["no_port"], 3);
  EXPECT_TRUE(line["per_peer"][1]["port"].is_null()) << "a client host: no ephemeral port";
  EXPECT_TRUE(line["per_peer"][1]["closes"].empty());
}

TEST(JsonSink, BuffersUntilFlushOrThreshold) {
  std::ostringstream out;
  JsonSink sink(out, kClock, "web-1");
  sink.write(ConnectionRecord{client(), 1250 * kMs});
  EXPECT_TRUE(out.str().empty());
  sink.flush();
  const std::size_t one_line = out.str().size();
  EXPECT_GT(one_line, 0u);
  while (out.str().size() == one_line) {
    sink.write(ConnectionRecord{client(), 1250 * kMs});
  }
  // Written in whole lines once the buffer passed the threshold.
  EXPECT_GE(out.str().size(), JsonSink::kFlushBytes);
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_EQ(out.str().size() % one_line, 0u);
}

TEST(JsonSink, DestructorWritesWhatIsBuffered) {
  std::ostringstream out;
  {
    JsonSink sink(out, kClock, "web-1");
    sink.write(ConnectionRecord{client(), 1250 * kMs});
  }
  EXPECT_EQ(parse_lines(out.str()).size(), 1u);
}

}  // namespace
}  // namespace tcptrail
