#include "analyzers/interim_tracker.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "event_builder.hpp"
#include "kernel_model.hpp"
#include "tcptrail/collector.hpp"

namespace tcptrail {
namespace {

constexpr std::uint64_t kSecond = 1'000'000'000;

SocketSnapshot open_socket(std::uint64_t cookie, TcpState state, std::uint64_t acked,
                           std::uint64_t received, std::uint32_t retrans) {
  SocketSnapshot s;
  s.cookie = cookie;
  s.state = state;
  s.bytes_acked = acked;
  s.bytes_received = received;
  s.total_retrans = retrans;
  s.srtt_us = 120;
  return s;
}

Connection established(Role role) {
  Connection conn;
  conn.role = role;
  conn.established = true;
  return conn;
}

TEST(ApplicationTraffic, LessOurSynAndTheFinsAsConnectionRecordsCount) {
  const Connection client = established(Role::kClient);
  const Connection server = established(Role::kServer);
  EXPECT_EQ(application_traffic(client, open_socket(1, TcpState::kEstablished, 101, 50, 2)),
            (TrafficCounts{100, 50, 2}));
  EXPECT_EQ(application_traffic(server, open_socket(1, TcpState::kEstablished, 101, 50, 0)),
            (TrafficCounts{101, 50, 0}))
      << "a server child's counters start past its SYN-ACK";
  EXPECT_EQ(application_traffic(server, open_socket(1, TcpState::kCloseWait, 10, 51, 0)),
            (TrafficCounts{10, 50, 0}))
      << "the peer's FIN came";
  EXPECT_EQ(application_traffic(client, open_socket(1, TcpState::kFinWait2, 102, 50, 0)),
            (TrafficCounts{100, 50, 0}))
      << "our FIN was acked";
  EXPECT_EQ(application_traffic(client, open_socket(1, TcpState::kFinWait1, 101, 50, 0)),
            (TrafficCounts{100, 50, 0}))
      << "our FIN not acked yet";
}

TEST(InterimTracker, FirstSinceTheStartThenSinceTheLast) {
  InterimTracker tracker;
  EXPECT_EQ(tracker.advance(7, {1000, 10, 1}), (TrafficCounts{1000, 10, 1}));
  tracker.end_dump();
  EXPECT_EQ(tracker.advance(7, {1500, 10, 3}), (TrafficCounts{500, 0, 2}));
  tracker.end_dump();
  EXPECT_EQ(tracker.advance(7, {1400, 20, 3}), (TrafficCounts{0, 10, 0}))
      << "a counter that went back counts nothing";
}

TEST(InterimTracker, ForgetsWhatTheLastDumpDidNotShow) {
  InterimTracker tracker;
  for (std::uint64_t cookie = 1; cookie <= 1000; ++cookie) {
    tracker.advance(cookie, {cookie, 0, 0});
  }
  tracker.end_dump();
  EXPECT_EQ(tracker.remembered(), 1000u);
  tracker.advance(5, {10, 0, 0});
  tracker.end_dump();
  EXPECT_EQ(tracker.remembered(), 1u) << "memory follows the open connections";
  tracker.end_dump();
  EXPECT_EQ(tracker.advance(5, {20, 0, 0}), (TrafficCounts{20, 0, 0}))
      << "gone from a dump: since the start again";
}

class NoHolders : public FdOwnerLookup {
public:
  bool fresh_since(std::uint64_t /*since_ns*/) override { return true; }
  std::vector<FdOwner> owners(std::uint32_t /*inode*/) override { return {}; }
  std::uint32_t inode_of(std::uint64_t /*cookie*/, std::uint32_t /*netns*/) override { return 0; }
};

struct Interim {
  std::uint64_t conn_id;
  TcpState state;
  std::uint32_t srtt_us;
  TrafficCounts since_last;
  TrafficCounts total;
  std::uint64_t ts_ns;
};

class InterimLog : public RecordSink {
public:
  void write(const Record& record) override {
    if (const auto* r = std::get_if<InterimRecord>(&record)) {
      records.push_back({r->conn.conn_id, r->state, r->srtt_us, r->since_last, r->total, r->ts_ns});
    }
  }
  void flush() override {}
  std::vector<Interim> records;
};

// Two dumps of two open connections, one of them filtered out: records for the other, with the
// deltas between the dumps, stamped with the dump's time.
TEST(Collector, InterimRecordsForTheConnectionsThatPassTheFilter) {
  InterimLog log;
  NoHolders holders;
  testing::KernelModel kernel;
  CollectorConfig config;
  config.filter.pids = {100};
  Collector collector(config, log, holders, kernel);

  InterimSample kept{established(Role::kClient), open_socket(1, TcpState::kEstablished, 1, 0, 0)};
  kept.conn.conn_id = 11;
  kept.conn.owner = testing::owner(100, "pool");
  InterimSample other{established(Role::kClient), open_socket(2, TcpState::kEstablished, 1, 0, 0)};
  other.conn.conn_id = 12;
  other.conn.owner = testing::owner(200, "other");

  kept.socket.bytes_acked = 1 + 4096;
  kept.socket.bytes_received = 100;
  collector.on_interim({10 * kSecond, {kept, other}});
  kept.socket.bytes_acked = 1 + 4096 + 512;
  kept.socket.total_retrans = 2;
  kept.socket.state = TcpState::kCloseWait;
  kept.socket.bytes_received = 100 + 1;  // and the peer's FIN
  collector.on_interim({11 * kSecond, {kept, other}});

  ASSERT_EQ(log.records.size(), 2u);
  EXPECT_EQ(log.records[0].conn_id, 11u);
  EXPECT_EQ(log.records[0].ts_ns, 10 * kSecond);
  EXPECT_EQ(log.records[0].since_last, (TrafficCounts{4096, 100, 0}));
  EXPECT_EQ(log.records[0].total, (TrafficCounts{4096, 100, 0}));
  EXPECT_EQ(log.records[0].srtt_us, 120u);
  EXPECT_EQ(log.records[1].ts_ns, 11 * kSecond);
  EXPECT_EQ(log.records[1].state, TcpState::kCloseWait);
  EXPECT_EQ(log.records[1].since_last, (TrafficCounts{512, 0, 2}));
  EXPECT_EQ(log.records[1].total, (TrafficCounts{4608, 100, 2}));
}

// A dump that travels in parts is one dump: a connection in its first part is not forgotten
// when the second ends nothing, and only the last part ends it.
TEST(Collector, InterimDumpInPartsIsOneDump) {
  InterimLog log;
  NoHolders holders;
  testing::KernelModel kernel;
  Collector collector(CollectorConfig{}, log, holders, kernel);
  InterimSample first{established(Role::kClient), open_socket(1, TcpState::kEstablished, 1, 0, 0)};
  first.conn.conn_id = 21;
  InterimSample second{established(Role::kClient), open_socket(2, TcpState::kEstablished, 1, 0, 0)};
  second.conn.conn_id = 22;
  first.socket.bytes_acked = 1 + 100;
  second.socket.bytes_acked = 1 + 200;
  collector.on_interim({10 * kSecond, {first}, false});
  collector.on_interim({10 * kSecond, {second}, true});
  first.socket.bytes_acked = 1 + 150;
  second.socket.bytes_acked = 1 + 260;
  collector.on_interim({11 * kSecond, {second}, false});
  collector.on_interim({11 * kSecond, {first}, true});

  ASSERT_EQ(log.records.size(), 4u);
  EXPECT_EQ(log.records[2].conn_id, 22u);
  EXPECT_EQ(log.records[2].since_last, (TrafficCounts{60, 0, 0}));
  EXPECT_EQ(log.records[3].conn_id, 21u);
  EXPECT_EQ(log.records[3].since_last, (TrafficCounts{50, 0, 0}))
      << "remembered across the parts of the dump before";
}

}  // namespace
}  // namespace tcptrail
